"""Tests for the stochastic-HMP protocol windows and root-relative conversion."""

import numpy as np
import pytest

from bds_jax.data import hmp
from bds_jax.data import sources
from bds_jax.data.sources import SequenceSet
from bds_jax.h36m import actions
from bds_jax.h36m import formats
from bds_jax.h36m import kinematics
# Its helpers write Human3.6M files and build the TFDS dataset (tests/ is on sys.path).
import test_human36m_builder as h36m_files


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


# ---------------------------------------------------------------------------------------------
# Human3.6M: the protocol's sequence list (S11 "Directions" left out) and its 5,168 windows.


def _h36m_set(layout):
  """A full S9 + S11 test split as loaded from `layout`, with the protocol's window counts.

  Each (subject, action) has two trials spelled as in the layout; S11 Directions has only one
  in the npz, as VideoPose3D left the other out. Frames 101 + 25 k give exactly k windows.
  """
  trials = {'cdf': ('', '1'), 'npz': ('', '1'), 'expmap': ('1', '2')}[layout]
  dropped = hmp.H36M_DROPPED_SUBACTION[layout]
  rows = []  # (subject, action id, sub-action)
  for s, subject in enumerate(hmp.H36M_TEST_SUBJECTS):
    for a, action in enumerate(actions.ACTIONS):
      for sub in trials:
        if not (layout == 'npz' and (subject, action, sub) == ('S11', 'Directions', '')):
          rows.append((s, a, sub))
  lengths, left = [], dict(hmp.H36M_TEST_WINDOWS)
  per_subject = {0: 30, 1: 29}  # kept sequences
  for s, a, sub in rows:
    if (s, a, sub) == (1, 0, dropped):
      lengths.append(101 + 25 * 60)  # about what the real sequence adds
      continue
    subject = hmp.H36M_TEST_SUBJECTS[s]
    k = -(-left[subject] // per_subject[s])  # spread the windows evenly
    left[subject] -= k
    per_subject[s] -= 1
    lengths.append(101 + 25 * k)
  return SequenceSet(
      poses=[_toy_poses(n, 1000.0 * i) for i, n in enumerate(lengths)],
      labels=np.array([a for _, a, _ in rows], np.int32), label_names=actions.ACTIONS,
      subjects=np.array([s for s, _, _ in rows], np.int32),
      subject_names=hmp.H36M_TEST_SUBJECTS,
      extras={'subaction': np.array([sub for _, _, sub in rows]),
              'layout': np.array([layout] * len(rows))},
      name='human36m', split='test'), rows


def test_h36m_full_split_gives_the_protocol_windows_in_every_layout():
  per_layout = {}
  for layout in formats.LAYOUTS:
    seqs, rows = _h36m_set(layout)
    w = hmp.protocol_windows(seqs)
    assert len(w) == hmp.H36M_NUM_TEST_WINDOWS == 5168
    kept = hmp.h36m_protocol_sequences(seqs)
    assert len(kept) == 59
    dropped = {i for i, (s, a, sub) in enumerate(rows)
               if (s, a, sub) == (1, 0, hmp.H36M_DROPPED_SUBACTION[layout])}
    assert len(dropped) == (0 if layout == 'npz' else 1)
    assert not dropped & set(w.sequence.tolist())
    per_layout[layout] = np.bincount(w.label, minlength=15)  # the CMD class weights
  np.testing.assert_array_equal(per_layout['cdf'], per_layout['npz'])
  np.testing.assert_array_equal(per_layout['expmap'], per_layout['npz'])


def test_h36m_full_split_with_other_counts_raises():
  seqs, _ = _h36m_set('cdf')
  seqs.poses[0] = seqs.poses[0][:-25]  # one window fewer in S9
  with pytest.raises(ValueError, match=r'expects 59 sequences and 5168 windows.*got 59 '
                     r'sequences and 5167 windows'):
    hmp.protocol_windows(seqs)
  # Other window lengths are not the protocol's: no check.
  assert len(hmp.protocol_windows(seqs, observed=20))
  seqs, _ = _h36m_set('cdf')
  del seqs.extras['subaction']
  with pytest.raises(ValueError, match='subaction/layout extras'):
    hmp.protocol_windows(seqs)


def test_partial_or_other_splits_are_not_checked():
  seqs, rows = _h36m_set('cdf')
  keep = [i for i, (_, a, _) in enumerate(rows) if a != 3]  # no Greeting
  part = SequenceSet([seqs.poses[i] for i in keep], seqs.labels[keep], seqs.label_names,
                     seqs.subjects[keep], seqs.subject_names,
                     {k: v[keep] for k, v in seqs.extras.items()}, 'human36m', 'test')
  w = hmp.protocol_windows(part)  # fewer windows than 5,168, and no error
  directions = [i for i in range(len(part)) if part.subjects[i] == 1 and part.labels[i] == 0]
  assert len(w) < 5168 and set(w.sequence) & set(directions) == {directions[1]}
  toy = SequenceSet(seqs.poses, seqs.labels, seqs.label_names, seqs.subjects,
                    seqs.subject_names, seqs.extras, 'toy', 'test')
  assert len(hmp.protocol_windows(toy)) == 5168 + 60  # not Human3.6M: nothing left out


_H36M_FILES = [  # (subject, CDF file / npz key, exp-map file, frames); lengths tell them apart
    ('S1', 'Walking', 'walking_1', 130),  # the train split must not be empty
    ('S9', 'Walking', 'walking_1', 160),
    ('S9', 'Eating 1', 'eating_2', 210),
    ('S11', 'Directions', 'directions_2', 300),  # not in VideoPose3D's npz
    ('S11', 'Directions 1', 'directions_1', 230),
    ('S11', 'Walking', 'walking_1', 200),
]


def test_h36m_files_give_the_same_windows_in_every_layout(tmp_path):
  rng = np.random.default_rng(0)
  npz = {}
  for subject, stem, expmap_stem, n in _H36M_FILES:
    channels = h36m_files._smooth_expmap(rng, n)  # root zero: world = root-centred poses
    poses = kinematics.expmap_to_positions(channels)
    h36m_files._write_cdf(tmp_path / 'cdf' / subject / 'MyPoseFeatures/D3_Positions' /
                          f'{stem}.cdf', (poses * 1000.0).reshape(1, -1, 96))
    h36m_files._write_expmap(tmp_path / 'expmap' / subject / f'{expmap_stem}.txt', channels)
    if (subject, stem) != ('S11', 'Directions'):
      npz.setdefault(subject, {})[stem] = poses.astype(np.float32)
  (tmp_path / 'npz').mkdir()
  np.savez_compressed(tmp_path / 'npz' / formats.NPZ_FILENAME, positions_3d=npz)

  windows = {}
  for layout in formats.LAYOUTS:
    builder = h36m_files._build('subjects', tmp_path / f'tfds_{layout}', tmp_path / layout)
    seqs = sources.load_split(builder, 'human36m', 'test')
    assert set(seqs.extras['layout']) == {layout}
    assert len(seqs) == (4 if layout == 'npz' else 5)
    w = hmp.protocol_windows(seqs)
    names = [(seqs.subject_names[seqs.subjects[i]], len(seqs.poses[i])) for i in w.sequence]
    windows[layout] = {(*name, int(st)): (o, f) for name, st, o, f in
                       zip(names, w.start, w.observed, w.future)}
  assert len(windows['npz']) == 2 + 4 + 5 + 3  # 160, 210, 230, 200 frames
  assert ('S11', 300, 0) not in windows['cdf']
  for layout in ('cdf', 'expmap'):
    assert windows[layout].keys() == windows['npz'].keys()
    for key, (o, f) in windows[layout].items():
      np.testing.assert_allclose(o, windows['npz'][key][0], atol=1e-5)
      np.testing.assert_allclose(f, windows['npz'][key][1], atol=1e-5)
