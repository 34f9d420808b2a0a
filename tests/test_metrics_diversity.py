"""Tests for the paper's diversity metrics (ASD, FSD, APD) and best-of-N ADE/FDE."""

import numpy as np
import pytest

from bds_jax.metrics import diversity

T, D = 6, 51


def _offsets(values):
  """Samples that sit at constant offsets `values` along dim 0 (per-frame distance |a − b|)."""
  s = np.zeros((len(values), T, D), np.float32)
  s[:, :, 0] = np.asarray(values, np.float32)[:, None]
  return s


def test_identical_samples_have_zero_diversity():
  s = np.repeat(np.random.default_rng(0).normal(size=(1, T, D)), 5, axis=0)
  assert diversity.asd(s) == 0.0
  assert diversity.fsd(s) == 0.0
  assert diversity.apd(s) == 0.0


def test_two_samples_at_known_distance():
  s = _offsets([0.0, 1.0])
  assert diversity.asd(s) == pytest.approx(1.0)
  assert diversity.fsd(s) == pytest.approx(1.0)
  # The flattened trajectories differ by 1 in each of T frames: norm √T.
  assert diversity.apd(s) == pytest.approx(np.sqrt(T))


def test_three_samples_by_hand():
  s = _offsets([0.0, 1.0, 3.0])  # pairwise distances 1, 3, 2
  # Nearest neighbours: 0 -> 1 (1), 1 -> 0 (1), 2 -> 1 (2).
  assert diversity.asd(s) == pytest.approx(4.0 / 3.0)
  # (1/N) Σ_i Σ_{j≠i} ||·|| / (N − 1) = 2 (1 + 3 + 2) √T / 6.
  assert diversity.apd(s) == pytest.approx(2.0 * np.sqrt(T), rel=1e-6)


def test_fsd_uses_only_the_last_frame():
  s = _offsets([0.0, 1.0])
  s[1, -1, 0] = 5.0
  assert diversity.fsd(s) == pytest.approx(5.0)
  assert diversity.asd(s) == pytest.approx((T - 1 + 5.0) / T)


def test_ade_and_fde_pick_the_best_sample_independently():
  gt = np.zeros((T, D), np.float32)
  s = _offsets([0.5, 1.0])
  s[1, -1, 0] = 0.1  # sample 1 is worse on average but best at the last frame
  assert diversity.ade(s, gt) == pytest.approx(0.5)
  assert diversity.fde(s, gt) == pytest.approx(0.1)


def test_batched_matches_single_and_accepts_joint_arrays():
  rng = np.random.default_rng(1)
  samples = rng.normal(size=(5, 4, T, 17, 3)).astype(np.float32)
  futures = rng.normal(size=(5, T, 17, 3)).astype(np.float32)
  out = diversity.diversity_metrics(samples, futures, batch_size=2)
  assert all(v.shape == (5,) for v in out.values())
  for c in range(5):
    flat = samples[c].reshape(4, T, D)
    d = np.linalg.norm(flat[:, None] - flat[None], axis=-1)  # (N, N, T)
    avg = d.mean(-1)
    avg[np.eye(4, dtype=bool)] = np.inf
    assert out['asd'][c] == pytest.approx(avg.min(1).mean(), rel=1e-5)
    err = np.linalg.norm(flat - futures[c].reshape(T, D), axis=-1)
    assert out['ade'][c] == pytest.approx(err.mean(-1).min(), rel=1e-5)
    assert out['fde'][c] == pytest.approx(err[:, -1].min(), rel=1e-5)
    assert out['apd'][c] == pytest.approx(diversity.apd(samples[c]), rel=1e-6)


def test_needs_two_samples():
  with pytest.raises(ValueError, match='at least 2'):
    diversity.diversity_metrics(np.zeros((2, 1, T, D)), np.zeros((2, T, D)))
