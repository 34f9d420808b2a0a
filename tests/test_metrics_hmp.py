"""Tests for the stochastic-HMP metrics (DLow / BeLFusion definitions)."""

import numpy as np
import pytest

from bds_jax.metrics import hmp

T, D = 5, 48


def _const(values, t=T):
  """Trajectories at constant offsets `values` along dim 0: per-frame distance |a − b|."""
  x = np.zeros((len(values), t, D), np.float32)
  x[:, :, 0] = np.asarray(values, np.float32)[:, None]
  return x


def test_apd_pairs_and_single_sample():
  assert hmp.apd(_const([0.7])) == 0.0
  assert hmp.apd(_const([0.0, 2.0])) == pytest.approx(2.0 * np.sqrt(T))
  # Unordered pairs (0,1)=1, (0,2)=3, (1,2)=2 -> mean 2, times √T for the flattened norm.
  assert hmp.apd(_const([0.0, 1.0, 3.0])) == pytest.approx(2.0 * np.sqrt(T), rel=1e-6)


def test_distances_are_l2_of_the_whole_pose_not_mpjpe():
  gt = np.zeros((T, 16, 3), np.float32)
  pred = gt[None] + np.array([0.1, 0.0, 0.0], np.float32)  # every joint 10 cm off
  # √(16 · 0.1²) = 0.4, where MPJPE would be 0.1.
  assert hmp.ade(pred, gt) == pytest.approx(0.4, rel=1e-6)
  assert hmp.fde(pred, gt) == pytest.approx(0.4, rel=1e-6)


def test_ade_fde_best_of_k():
  gt = np.zeros((T, D), np.float32)
  s = _const([0.5, 1.0])
  s[1, -1, 0] = 0.1
  assert hmp.ade(s, gt) == pytest.approx(0.5)
  assert hmp.fde(s, gt) == pytest.approx(0.1)


def _line_gt():
  last = np.zeros((5, D))
  last[:, 0] = [0.0, 0.3, 0.5, 0.9, 2.0]
  futures = _const([0.0, 1.0, 2.0, 3.0, 4.0])
  return last, futures


def test_multimodal_gt_includes_self_and_is_strict():
  last, futures = _line_gt()
  mm = hmp.multimodal_ground_truth(last, futures, threshold=0.5)
  # 0.5 apart is not < 0.5: windows 0 and 2 are not neighbours.
  assert [list(mm.members(i)) for i in range(5)] == [[0, 1], [0, 1, 2], [1, 2, 3], [2, 3], [4]]
  np.testing.assert_array_equal(mm.sizes, [2, 3, 3, 2, 1])
  np.testing.assert_array_equal(mm[1], futures[[0, 1, 2]])
  wider = hmp.multimodal_ground_truth(last, futures, threshold=0.5000001, chunk=2)
  assert list(wider.members(0)) == [0, 1, 2]


def test_mmade_mmfde_by_hand():
  last, futures = _line_gt()
  futures[2, -1, 0] = 1.5  # window 2's future ends elsewhere
  mm = hmp.multimodal_ground_truth(last, futures, threshold=0.5)
  samples = np.stack([_const([0.8, 2.5]), _const([3.9, 3.9]), _const([0.0, 0.0])])
  out = hmp.window_metrics(samples, futures[[1, 4, 0]], window_ids=[1, 4, 0], mmgt=mm)
  # Window 1: M = futures 0, 1, 2 (constants 0, 1, 2; future 2 ends at 1.5). Samples 0.8, 2.5.
  ade_0 = 0.8
  ade_1 = 0.2
  ade_2 = min(((T - 1) * 1.2 + 0.7) / T, ((T - 1) * 0.5 + 1.0) / T)
  assert out['mmade'][0] == pytest.approx((ade_0 + ade_1 + ade_2) / 3, rel=1e-6)
  assert out['mmfde'][0] == pytest.approx((0.8 + 0.2 + 0.7) / 3, rel=1e-6)
  # Window 4 is alone: MMADE = ADE.
  assert out['mmade'][1] == pytest.approx(out['ade'][1]) == pytest.approx(0.1, rel=1e-5)
  # Window 0: M = futures 0 (exact) and 1 (1 away).
  assert out['mmade'][2] == pytest.approx(0.5)


def test_multimodal_apd_and_apde():
  last, futures = _line_gt()
  mm = hmp.multimodal_ground_truth(last, futures, threshold=0.5)
  mm_apd = hmp.multimodal_apd(mm)
  assert mm_apd[4] == 0.0  # a singleton set
  assert mm_apd[0] == pytest.approx(np.sqrt(T))  # futures 0 and 1, 1 apart in every frame
  assert mm_apd[1] == pytest.approx((1 + 2 + 1) / 3 * np.sqrt(T))
  assert hmp.apde([1.0, 2.0, 3.0], [0.0, 1.5, 4.0]) == pytest.approx(0.75)


def test_cmd_constant_velocity_by_hand():
  t_p, k = 10, 3
  v = np.array([0.01, 0.03])  # per-frame, per-joint speed of class 0 and class 1
  labels = np.array([0, 0, 1])
  samples = np.zeros((3, k, t_p, 16, 3), np.float32)
  for i, c in enumerate(labels):
    samples[i, :, :, :, 0] = v[c] * np.arange(t_p)[:, None]
  out = hmp.window_metrics(samples, samples[:, 0])
  np.testing.assert_allclose(out['motion'], v[labels][:, None] * np.ones(t_p - 1), rtol=1e-5)
  ref = np.array([0.02, 0.01])
  res = hmp.cmd(out['motion'], labels, ref)
  tri = t_p * (t_p - 1) / 2  # Σ_{t=1}^{T−1} (T − t)
  np.testing.assert_allclose(res['per_class'], [0.01 * tri, 0.02 * tri], rtol=1e-5)
  assert res['cmd'] == pytest.approx(2 / 3 * 0.01 * tri + 1 / 3 * 0.02 * tri, rel=1e-5)
  # A class missing from the labels has no CMD and no weight.
  res3 = hmp.cmd(out['motion'], labels, np.array([0.02, 0.01, 5.0]))
  assert np.isnan(res3['per_class'][2]) and res3['cmd'] == pytest.approx(res['cmd'])


def test_motion_averages_over_joints():
  samples = np.zeros((1, 2, 4, 16, 3), np.float32)
  samples[..., 3, :] = np.arange(4)[:, None] * np.array([0.0, 0.16, 0.0])  # one joint moves
  out = hmp.window_metrics(samples, samples[:, 0])
  np.testing.assert_allclose(out['motion'][0], [0.01] * 3, rtol=1e-5)


def test_h36m_reference_follows_label_names():
  ref = hmp.h36m_cmd_reference(('Photo', 'WalkDog', 'Walking'))
  np.testing.assert_allclose(ref, [0.004347639393585013, 0.007066049169369122,
                                   0.007537553520400006])
  assert len(hmp.h36m_cmd_reference()) == 15


def test_chunked_evaluation_matches_one_shot_and_summarize():
  rng = np.random.default_rng(0)
  n, k = 7, 4
  last = rng.normal(scale=0.2, size=(n, D))
  futures = rng.normal(size=(n, T, D)).astype(np.float32)
  samples = rng.normal(size=(n, k, T, D)).astype(np.float32)
  mm = hmp.multimodal_ground_truth(last, futures, threshold=2.0)
  assert 1 < mm.sizes.max() < n
  whole = hmp.window_metrics(samples, futures, np.arange(n), mm)
  parts = [hmp.window_metrics(samples[i:i + 3], futures[i:i + 3], np.arange(i, min(i + 3, n)), mm)
           for i in range(0, n, 3)]
  for key, value in whole.items():
    np.testing.assert_allclose(np.concatenate([p[key] for p in parts]), value, rtol=1e-6)
  # Brute-force MMADE.
  for i in range(n):
    err = np.linalg.norm(samples[i][None] - mm[i][:, None], axis=-1)  # (M, K, T)
    assert whole['mmade'][i] == pytest.approx(err.mean(-1).min(-1).mean(), rel=1e-5)
    assert whole['mmfde'][i] == pytest.approx(err[..., -1].min(-1).mean(), rel=1e-5)
  labels = np.arange(n) % 2
  mm_apd = hmp.multimodal_apd(mm)
  summary = hmp.summarize(whole, labels, np.array([0.1, 0.2]), mm_apd)
  assert set(summary) == {'APD', 'ADE', 'FDE', 'MMADE', 'MMFDE', 'CMD', 'APDE'}
  assert summary['ADE'] == pytest.approx(whole['ade'].mean())
