"""Tests for the Fréchet distance and the BeLFusion FID motion classifier."""

from flax import nnx
import numpy as np
import pytest

from bds_jax.metrics import fid


def _scale(x) -> float:
  """The features' scale: the trace of their covariance."""
  return float(np.trace(np.atleast_2d(np.cov(np.asarray(x, np.float64), rowvar=False))))


def test_identical_sets_have_zero_distance():
  for seed, scale in ((0, 1.0), (1, 1e-3), (2, 1e3)):
    x = np.random.default_rng(seed).normal(size=(200, 30)) * scale
    d = fid.fid_from_features(x, x)
    assert d >= 0.0
    assert d <= 1e-9 * _scale(x)


def test_never_negative_on_near_identical_sets():
  # The usual sqrtm recipe returns small negative numbers here; ours is clipped by construction.
  rng = np.random.default_rng(7)
  for _ in range(20):
    x = np.tanh(rng.normal(size=(64, 30)))
    d = fid.fid_from_features(x, x + 1e-9 * rng.normal(size=x.shape))
    assert 0.0 <= d <= 1e-8 * _scale(x)


def test_commuting_gaussians_closed_form():
  # ||μ1 − μ2||² = 5; Tr(Σ1 + Σ2) = 10; (Σ1 Σ2)^{1/2} = diag(2, 2).
  d = fid.frechet_distance([0.0, 0.0], np.diag([1.0, 4.0]), [1.0, 2.0], np.diag([4.0, 1.0]))
  assert d == pytest.approx(7.0)


def test_general_gaussians_closed_form():
  rng = np.random.default_rng(1)
  a = rng.normal(size=(5, 5))
  sigma = a @ a.T + 0.5 * np.eye(5)
  # Against the identity: Tr(Σ + I − 2Σ^{1/2}) = Σ_k (√λ_k − 1)².
  lam = np.linalg.eigvalsh(sigma)
  mu = rng.normal(size=5)
  want = mu @ mu + np.sum((np.sqrt(lam) - 1.0) ** 2)
  assert fid.frechet_distance(mu, sigma, np.zeros(5), np.eye(5)) == pytest.approx(want, rel=1e-8)
  # Symmetric in its arguments.
  assert fid.frechet_distance(np.zeros(5), np.eye(5), mu, sigma) == pytest.approx(want, rel=1e-8)


def test_sampled_features_approach_the_closed_form():
  rng = np.random.default_rng(2)
  x = rng.normal(size=(20000, 3))
  y = rng.normal(size=(20000, 3)) * np.array([1.0, 2.0, 1.0]) + np.array([1.0, 0.0, 0.0])
  # ||Δμ||² = 1; Tr(I + diag(1,4,1) − 2 diag(1,2,1)) = 1.
  assert fid.fid_from_features(x, y) == pytest.approx(2.0, abs=0.1)


def test_singular_covariances_stay_finite():
  x = np.zeros((50, 3))
  x[:, 0] = np.random.default_rng(3).normal(size=50)  # rank-1 covariance
  d = fid.fid_from_features(x, x + 1.0)
  assert np.isfinite(d) and d == pytest.approx(3.0, rel=1e-9)


def test_rank_deficient_closed_form():
  # Σ1 = diag(4, 0), Σ2 = diag(1, 9): (Σ1 Σ2)^{1/2} = diag(2, 0); Tr = 4 + 10 − 4 = 10.
  d = fid.frechet_distance(np.zeros(2), np.diag([4.0, 0.0]), np.zeros(2), np.diag([1.0, 9.0]))
  assert d == pytest.approx(10.0, rel=1e-12)


def test_non_finite_statistics_are_an_error():
  with pytest.raises(ValueError, match='non-finite'):
    fid.frechet_distance(np.zeros(2), np.eye(2), np.array([np.nan, 0.0]), np.eye(2))


def test_low_rank_fid_is_the_fid():
  # Fewer samples than features: the (n1, n2) SVD gives the (F, F) recipe's distance.
  rng = np.random.default_rng(1)
  a = rng.standard_normal((30, 50))
  b = 0.7 * rng.standard_normal((40, 50)) @ rng.standard_normal((50, 50)) / 7 + 0.3
  expected = fid.frechet_distance(*fid.gaussian_stats(a), *fid.gaussian_stats(b))
  assert expected > 1
  assert fid.fid_from_features(a, b) == pytest.approx(expected, rel=1e-6)
  assert fid.fid_from_features(a, a) == pytest.approx(0.0, abs=1e-9 * expected)


def _numpy_gru_stack(arrays, x):
  """PyTorch nn.GRU equations written out directly (zero initial state)."""
  sig = lambda v: 1 / (1 + np.exp(-v))
  out = x.astype(np.float64)
  for layer in range(2):
    w_ih, w_hh = arrays[f'recurrent.weight_ih_l{layer}'], arrays[f'recurrent.weight_hh_l{layer}']
    b_ih, b_hh = arrays[f'recurrent.bias_ih_l{layer}'], arrays[f'recurrent.bias_hh_l{layer}']
    h = np.zeros((x.shape[0], w_hh.shape[1]))
    hs = []
    for t in range(x.shape[1]):
      gi = out[:, t] @ w_ih.T + b_ih
      gh = h @ w_hh.T + b_hh
      r = sig(gi[:, :128] + gh[:, :128])
      z = sig(gi[:, 128:256] + gh[:, 128:256])
      n = np.tanh(gi[:, 256:] + r * gh[:, 256:])
      h = (1 - z) * n + z * h
      hs.append(h)
    out = np.stack(hs, axis=1)
  feat = np.tanh(out[:, -1] @ arrays['linear1.weight'].T + arrays['linear1.bias'])
  return feat, feat @ arrays['linear2.weight'].T + arrays['linear2.bias']


def test_classifier_npz_round_trip_and_reference_maths(tmp_path):
  rng = np.random.default_rng(4)
  arrays = {name: rng.normal(scale=0.3, size=shape).astype(np.float32)
            for name, shape in fid.expected_npz_shapes().items()}
  path = str(tmp_path / 'cls.npz')
  np.savez(path, **arrays)
  model = fid.load_motion_classifier(path)
  x = rng.normal(scale=0.3, size=(3, 12, 48)).astype(np.float32)
  want_feat, want_logits = _numpy_gru_stack(arrays, x)
  np.testing.assert_allclose(model.features(x), want_feat, atol=2e-5)
  np.testing.assert_allclose(model(x), want_logits, atol=2e-4)
  np.testing.assert_allclose(fid.feature_extractor(model)(x), want_feat, atol=2e-5)
  assert fid.fid_from_checkpoint(None, x, x) is None
  feats = np.asarray(fid.feature_extractor(model)(x), np.float64)
  d = fid.fid_from_checkpoint(path, x, x)
  assert 0.0 <= d <= 1e-9 * _scale(feats)
  # Saving writes the same layout back.
  fid.save_motion_classifier(model, str(tmp_path / 'again.npz'))
  with np.load(str(tmp_path / 'again.npz')) as again:
    for name, value in arrays.items():
      np.testing.assert_array_equal(again[name], value)


def test_classifier_rejects_wrong_npz(tmp_path):
  shapes = fid.expected_npz_shapes()
  arrays = {name: np.zeros(shape, np.float32) for name, shape in shapes.items()}
  arrays.pop('linear2.bias')
  np.savez(str(tmp_path / 'a.npz'), **arrays)
  with pytest.raises(ValueError, match='Missing arrays'):
    fid.load_motion_classifier(str(tmp_path / 'a.npz'))
  arrays['linear2.bias'] = np.zeros(7, np.float32)
  np.savez(str(tmp_path / 'b.npz'), **arrays)
  with pytest.raises(ValueError, match='wrong shapes'):
    fid.load_motion_classifier(str(tmp_path / 'b.npz'))
  with pytest.raises(FileNotFoundError):
    fid.load_motion_classifier(str(tmp_path / 'missing.npz'))


def test_fid_with_an_extractor():
  model = fid.MotionClassifier(rngs=nnx.Rngs(0))
  rng = np.random.default_rng(5)
  real = rng.normal(scale=0.1, size=(64, 10, 48)).astype(np.float32)
  extractor = fid.feature_extractor(model)
  scale = _scale(extractor(real))
  assert 0.0 <= fid.fid(extractor, real, real, batch_size=16) <= 1e-9 * scale
  assert fid.fid(extractor, real, real + 0.5, batch_size=16) > 1e-2 * scale
  assert np.asarray(extractor(real)).shape == (64, 30)
