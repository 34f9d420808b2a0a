"""Tests for the behavior-transfer metrics: TDE (aligned and upstream), d_β, MPJPE."""

import numpy as np
import pytest

from bds_jax.data.normalization import Normalizer
from bds_jax.metrics import transfer


def _source(n=4, frames=51, dim=51, seed=0):
  return np.random.default_rng(seed).normal(size=(n, frames, dim)).astype(np.float32)


def test_copy_of_source_has_zero_aligned_tde():
  src = _source()
  out = transfer.tde(src[:, 1:], src)
  assert set(out) == set(transfer.TDE_T_VALUES)
  assert all(v == pytest.approx(0.0, abs=1e-6) for v in out.values())


def test_upstream_tde_compares_with_the_previous_source_frame():
  src = _source()
  pred = src[:, 1:]  # a perfect copy of frames 1..50
  up = transfer.tde_upstream(pred, src)
  for t, k in transfer.TDE_INDICES.items():
    # Prediction k is frame k + 1; upstream compares it with source frame k.
    want = np.mean(np.linalg.norm(src[:, k + 1] - src[:, k], axis=-1))
    assert up[t] == pytest.approx(want, rel=1e-5)
  # A "prediction" that lags one frame scores 0 upstream but not in the aligned form.
  assert transfer.tde_upstream(src[:, :-1], src)[50] == pytest.approx(0.0, abs=1e-6)
  assert transfer.tde(src[:, :-1], src)[50] > 1.0


def test_known_offset_and_index_mapping():
  src = np.zeros((3, 51, 51), np.float32)
  pred = np.zeros((3, 50, 51), np.float32)
  pred[:, :, 0] = 2.0  # every prediction is off by a vector of norm 2
  pred[:, 49, 1] = 3.0  # the 50th prediction additionally by 3 in another dim -> norm √13
  pred[:, 10, 2] = 4.0  # T = 10 is prediction index 10 (upstream's mapping) -> norm √20
  out = transfer.tde(pred, src)
  assert out[1] == pytest.approx(2.0)
  assert out[10] == pytest.approx(np.sqrt(20.0))
  assert out[50] == pytest.approx(np.sqrt(13.0))
  assert transfer.tde(pred, src, frames=(20,)) == {20: pytest.approx(2.0)}
  with pytest.raises(ValueError, match='T in'):
    transfer.tde(pred, src, frames=(5,))


def test_metres_space_from_normalised_inputs():
  norm = Normalizer(np.ones(51, np.float32), np.full(51, 0.5, np.float32))
  src = np.zeros((2, 51, 51), np.float32)
  pred = np.zeros((2, 50, 51), np.float32)
  pred[..., 0] = 4.0  # 4 z-score units = 2 m in that dim
  assert transfer.tde(pred, src)[1] == pytest.approx(4.0)
  assert transfer.tde(pred, src, space='metres', normalizer=norm)[1] == pytest.approx(2.0)
  # Metre inputs as (..., 17, 3) need no normalizer.
  metres = transfer.tde(pred.reshape(2, 50, 17, 3) * 0.5, src.reshape(2, 51, 17, 3),
                        space='metres')
  assert metres[30] == pytest.approx(2.0)


def test_d_beta_mean_std_and_upstream_batches():
  mu = np.zeros((4, 8))
  mu2 = np.zeros((4, 8))
  mu2[:, 0] = [1.0, 3.0, 2.0, 2.0]
  out = transfer.d_beta(mu, mu2)
  assert out['mean'] == pytest.approx(2.0)
  assert out['std'] == pytest.approx(np.std([1.0, 3.0, 2.0, 2.0]))
  up = transfer.d_beta(mu, mu2, batch_size=2)  # batches [1, 3] and [2, 2]
  assert up['mean'] == pytest.approx(2.0)
  assert up['std'] == pytest.approx(np.sqrt(2.0) / 2)  # unbiased stds √2 and 0, averaged
  assert transfer.d_beta(mu, mu) == {'mean': 0.0, 'std': 0.0}


def test_mpjpe_mm_per_frame_and_mean():
  a = np.zeros((2, 3, 17, 3))
  b = a.copy()
  b[:, 0, :, 0] = 0.01  # frame 0: every joint 1 cm off
  b[:, 2, :8, 1] = 0.004  # frame 2: 8 of 17 joints 4 mm off
  out = transfer.mpjpe_mm(a, b)
  np.testing.assert_allclose(out['per_frame'], [10.0, 0.0, 4.0 * 8 / 17], rtol=1e-9)
  assert out['mean'] == pytest.approx((10.0 + 4.0 * 8 / 17) / 3)
  with pytest.raises(ValueError):
    transfer.mpjpe_mm(a[..., :2], b[..., :2])
