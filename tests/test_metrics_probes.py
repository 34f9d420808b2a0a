"""Tests for the trained probes: linear probe, RE regressor, gt classifier, realism classifier."""

import numpy as np
import optax
import pytest

from bds_jax.metrics import probes


def _blobs(n_per_class, num_classes, dim, seed, spread=0.3):
  rng = np.random.default_rng(seed)
  centres = np.random.default_rng(100).normal(scale=3.0, size=(num_classes, dim))
  y = np.repeat(np.arange(num_classes), n_per_class)
  return (centres[y] + rng.normal(scale=spread, size=(len(y), dim))).astype(np.float32), y


def test_linear_probe_constant_code_is_at_chance():
  y_train = np.repeat(np.arange(3), 20)
  y_test = np.repeat(np.arange(3), 10)
  out = probes.linear_probe_accuracy(np.ones((60, 5)), y_train, np.ones((30, 5)), y_test,
                                     num_classes=3, steps=50)
  # Every test code gets the same prediction: exactly one class in three is right.
  assert out['test_accuracy'] == pytest.approx(1 / 3)


def test_linear_probe_separable_classes_and_determinism():
  x_tr, y_tr = _blobs(30, 4, 8, seed=0)
  x_te, y_te = _blobs(20, 4, 8, seed=1)
  kwargs = dict(num_classes=4, seed=3, steps=200, batch_size=32, learning_rate=1e-2)
  out = probes.linear_probe_accuracy(x_tr, y_tr, x_te, y_te, **kwargs)
  assert out['test_accuracy'] >= 0.95 and out['train_accuracy'] >= 0.95
  assert probes.linear_probe_accuracy(x_tr, y_tr, x_te, y_te, **kwargs) == out


def test_linear_probe_rejects_bad_labels():
  with pytest.raises(ValueError, match='labels'):
    probes.linear_probe_accuracy(np.zeros((4, 2)), [0, 1, 2, 5], np.zeros((2, 2)), [0, 1],
                                 num_classes=3, steps=1)


def test_regression_error_small_when_code_holds_the_pose():
  rng = np.random.default_rng(0)
  poses = rng.normal(size=(600, 6)).astype(np.float32)
  informative = np.concatenate([poses, rng.normal(size=(600, 4))], axis=1)
  uninformative = rng.normal(size=(600, 10))
  kwargs = dict(seed=0, steps=400, batch_size=64)
  good = probes.posture_regression_error(informative[:400], poses[:400], informative[400:],
                                         poses[400:], **kwargs)
  bad = probes.posture_regression_error(uninformative[:400], poses[:400], uninformative[400:],
                                        poses[400:], **kwargs)
  # Predicting the mean pose would score E||N(0, I_6)|| ≈ 2.3.
  assert good['test_re'] < 0.5
  assert bad['test_re'] > 2.0
  # Memorising noise helps on train only: the held-out error is what tells them apart.
  assert bad['train_re'] < bad['test_re']


def test_paper_regression_error_trains_on_its_own_data():
  rng = np.random.default_rng(1)
  poses = rng.normal(size=(512, 6)).astype(np.float32)
  codes = rng.normal(size=(512, 10)).astype(np.float32)
  # 2 sequential batches per pass; 100 // 2 = 50 epochs, then the reported pass.
  same = probes.posture_regression_error_paper_same_data(codes, poses, iterations=100)
  held_out = probes.posture_regression_error(codes[:256], poses[:256], codes[256:], poses[256:],
                                             steps=100)['test_re']
  assert np.isfinite(same) and same < held_out


def _drift_sequences(n, seed, t=10, d=6):
  rng = np.random.default_rng(seed)
  y = rng.integers(0, 2, size=n)
  slope = np.where(y == 1, 0.3, -0.3)[:, None, None]
  x = slope * np.arange(t)[None, :, None] + rng.normal(scale=0.3, size=(n, t, d))
  return x.astype(np.float32), y


def test_sequence_classifier_learns_separable_sequences():
  x_tr, y_tr = _drift_sequences(200, 0)
  x_te, y_te = _drift_sequences(100, 1)
  out = probes.sequence_classifier_accuracy(x_tr, y_tr, x_te, y_te, num_classes=2, steps=150,
                                            batch_size=32, hidden=32, learning_rate=1e-2)
  assert out['test_accuracy'] >= 0.9


def _noise(n, seed, offset=0.0):
  return (np.random.default_rng(seed).normal(size=(n, 8, 4)) + offset).astype(np.float32)


def test_realism_classifier_at_chance_on_identical_distributions():
  out = probes.realism_classifier(_noise(200, 0), _noise(200, 1), _noise(500, 2), _noise(500, 3),
                                  steps=60, batch_size=64, hidden=16,
                                  optimizer=optax.adam(1e-2))
  assert abs(out['heldout_accuracy'] - 0.5) < 0.1
  assert abs(out['heldout_auc'] - 0.5) < 0.1
  assert abs(out['heldout_mean_p_real_fake'] - 0.5) < 0.15


def test_realism_classifier_separates_obviously_different_data():
  out = probes.realism_classifier(_noise(200, 0), _noise(200, 1, 3.0), _noise(200, 2),
                                  _noise(200, 3, 3.0), steps=60, batch_size=64, hidden=16,
                                  optimizer=optax.adam(1e-2))
  assert out['heldout_accuracy'] > 0.95 and out['train_accuracy'] > 0.95
  assert out['heldout_auc'] > 0.99
  assert out['heldout_mean_p_real_fake'] < 0.2
  assert out['paper_mean_p_real_fake_train'] < 0.2
  assert out['heldout_mean_p_real_real'] > 0.8


def test_roc_auc_by_hand():
  assert probes.roc_auc([0.9, 0.8], [0.1, 0.2]) == 1.0
  assert probes.roc_auc([0.1], [0.9]) == 0.0
  assert probes.roc_auc([0.5, 0.9], [0.5, 0.1]) == pytest.approx((0.5 + 1 + 1 + 1) / 4)
