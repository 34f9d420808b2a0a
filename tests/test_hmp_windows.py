"""Tests for the stochastic-HMP protocol windows and root-relative conversion."""

import numpy as np
import pytest

from bds_jax.data import hmp
from bds_jax.data.sources import SequenceSet


def _toy_poses(length, seq_offset=0.0):
  """Joint j at frame t sits at (t·(j + 1) + offset, j, 1): the root (j = 0) is (t + offset, 0, 1).

  Root-relative joint j is then (t·j, j, 0), which encodes the frame index.
  """
  t = np.arange(length, dtype=np.float32)[:, None]
  j = np.arange(17, dtype=np.float32)[None]
  return np.stack([t * (j + 1) + seq_offset, np.broadcast_to(j, (length, 17)),
                   np.ones((length, 17), np.float32)], axis=-1)


def _toy_set(lengths):
  return SequenceSet(
      poses=[_toy_poses(n, 1000.0 * i) for i, n in enumerate(lengths)],
      labels=np.arange(len(lengths), dtype=np.int32) + 3,
      label_names=tuple(f'c{i}' for i in range(len(lengths) + 3)),
      subjects=np.zeros(len(lengths), np.int32), subject_names=('S9',), extras={},
      name='toy', split='test')


def test_window_rule_is_strict():
  assert list(hmp.window_starts(125)) == []  # i < 0: none, although 125 frames would fit one
  assert list(hmp.window_starts(126)) == [0]
  assert list(hmp.window_starts(200)) == [0, 25, 50]
  assert list(hmp.window_starts(250)) == [0, 25, 50, 75, 100]
  assert list(hmp.window_starts(451, 30, 120, 120, 150)) == [150, 270]


def test_protocol_windows_counts_positions_and_content():
  seqs = _toy_set([200, 100, 250])
  w = hmp.protocol_windows(seqs)
  assert len(w) == 3 + 0 + 5
  np.testing.assert_array_equal(w.sequence, [0, 0, 0, 2, 2, 2, 2, 2])
  np.testing.assert_array_equal(w.start, [0, 25, 50, 0, 25, 50, 75, 100])
  np.testing.assert_array_equal(w.label, [3, 3, 3, 5, 5, 5, 5, 5])
  assert w.observed.shape == (8, 25, 48) and w.future.shape == (8, 100, 48)
  assert w.last_observed_abs.shape == (8, 17, 3)
  # Root-relative joint 1 (first 3 dims) is (t, 1, 0): frame t of the sequence.
  for i in range(len(w)):
    s = w.start[i]
    np.testing.assert_array_equal(w.observed[i, :, 0], np.arange(s, s + 25))
    np.testing.assert_array_equal(w.future[i, :, 0], np.arange(s + 25, s + 125))
    np.testing.assert_array_equal(w.last_observed_abs[i], seqs.poses[w.sequence[i]][s + 24])
  np.testing.assert_array_equal(w.last_observed, w.observed[:, -1])


def test_amass_style_lengths():
  w = hmp.protocol_windows(_toy_set([451]), observed=30, predicted=120, stride=120,
                           first_start=150)
  np.testing.assert_array_equal(w.start, [150, 270])
  assert w.observed.shape == (2, 30, 48) and w.future.shape == (2, 120, 48)
  np.testing.assert_array_equal(w.future[1, 0, 0], 300)


def test_too_short_sequences_raise():
  with pytest.raises(ValueError, match='long enough'):
    hmp.protocol_windows(_toy_set([100, 125]))


def test_root_relative_drops_and_subtracts_the_root():
  pose = np.random.default_rng(0).normal(size=(2, 17, 3))
  rel = hmp.to_root_relative(pose)
  assert rel.shape == (2, 48)
  np.testing.assert_allclose(rel[:, :3], pose[:, 1] - pose[:, 0])
  np.testing.assert_allclose(rel[:, -3:], pose[:, 16] - pose[:, 0])
  back = hmp.from_root_relative(rel, pose[:, 0])
  np.testing.assert_allclose(back, pose, atol=1e-12)
  # A (T, 48) future placed at one (3,) root broadcasts over frames.
  placed = hmp.from_root_relative(np.zeros((4, 48)), np.array([1.0, 2.0, 3.0]))
  assert placed.shape == (4, 17, 3) and np.all(placed == [1.0, 2.0, 3.0])
  with pytest.raises(ValueError):
    hmp.to_root_relative(np.zeros((2, 16, 3)))
