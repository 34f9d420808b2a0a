"""Shapes, initialisation and gradients of every module of the behavior model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from bds_jax.models import layers
from bds_jax.models.behavior import BehaviorModel
from bds_jax.models.regressor import PostureRegressor

B, T, D, H = 4, 9, 51, 16


def _grads_all_nonzero(grads):
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    assert np.all(np.isfinite(g)), path
    assert np.abs(g).max() > 0, f'no gradient reaches {jax.tree_util.keystr(path)}'


def test_weight_norm_linear_starts_as_plain_linear():
  layer = layers.WeightNormLinear(5, 3, nnx.Rngs(0))
  x = jax.random.normal(jax.random.key(1), (2, 5))
  np.testing.assert_allclose(layer(x), x @ layer.v[...] + layer.bias[...], rtol=1e-5, atol=1e-6)
  # Rescaling v leaves the output unchanged (only its direction matters).
  before = layer(x)
  layer.v[...] = 3.0 * layer.v[...]
  np.testing.assert_allclose(layer(x), before, rtol=1e-5, atol=1e-6)


def test_torch_style_init_bounds():
  lin = layers.torch_linear(64, 8, nnx.Rngs(0))
  assert np.abs(lin.kernel[...]).max() <= 1 / 8 and np.abs(lin.bias[...]).max() <= 1 / 8
  w = layers.LSTMWeights(3, 16, nnx.Rngs(0))
  assert w.w[...].shape == (64, 3 + 16) and w.b[...].shape == (64,)
  assert np.abs(w.w[...]).max() <= 0.25 and np.abs(w.b[...]).max() <= 0.5


@pytest.mark.parametrize('impl', ['fused', 'reference'])
def test_behavior_model_shapes_and_gradients(impl):
  model = BehaviorModel(D, H, nnx.Rngs(0), lstm_impl=impl)
  x = jax.random.normal(jax.random.key(0), (B, T, D))
  mu, logstd = model.posterior(x)
  assert mu.shape == logstd.shape == (B, H)
  x_hat, mu2, _ = model(x, key=jax.random.key(1))
  assert x_hat.shape == (B, T, D)
  np.testing.assert_allclose(mu, mu2)
  # Transfer: same code, other start posture, any length.
  start = jax.random.normal(jax.random.key(2), (B, D))
  assert model.decode(mu, start, 23).shape == (B, 23, D)

  graphdef, params = nnx.split(model)

  def loss(params):
    m = nnx.merge(graphdef, params)
    x_hat, mu, logstd = m(x, key=jax.random.key(1))
    return jnp.mean((x_hat - x) ** 2) + jnp.mean(mu ** 2) + jnp.mean(logstd ** 2)

  _grads_all_nonzero(jax.grad(loss)(nnx.to_pure_dict(params)))


def test_displacement_encoder_cannot_see_the_start_posture():
  x = jax.random.normal(jax.random.key(0), (B, T, D))
  offset = jax.random.normal(jax.random.key(1), (B, 1, D))  # another start posture, same motion
  moved = BehaviorModel(D, H, nnx.Rngs(0), encoder_input='displacement')
  np.testing.assert_allclose(moved.posterior(x + offset)[0], moved.posterior(x)[0], rtol=1e-5,
                             atol=1e-5)
  paper = BehaviorModel(D, H, nnx.Rngs(0))  # the paper's encoder reads the poses themselves
  assert not np.allclose(paper.posterior(x + offset)[0], paper.posterior(x)[0], atol=1e-3)
  with pytest.raises(ValueError, match="encoder_input='velocity' is not one of"):
    BehaviorModel(D, H, nnx.Rngs(0), encoder_input='velocity')


def test_posterior_sample_vs_mean():
  model = BehaviorModel(D, H, nnx.Rngs(0))
  x = jax.random.normal(jax.random.key(0), (B, T, D))
  det1, _, _ = model(x)
  det2, _, _ = model(x)
  np.testing.assert_array_equal(det1, det2)
  s1, _, _ = model(x, key=jax.random.key(1))
  s2, _, _ = model(x, key=jax.random.key(2))
  assert not np.allclose(s1, s2)


def test_fused_and_reference_models_agree():
  x = jax.random.normal(jax.random.key(0), (B, T, D))
  a = BehaviorModel(D, H, nnx.Rngs(0), lstm_impl='fused')(x)[0]
  b = BehaviorModel(D, H, nnx.Rngs(0), lstm_impl='reference')(x)[0]
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_regressor_shapes_and_gradients():
  reg = PostureRegressor(H, D, T, (32, 16), 8, nnx.Rngs(0))
  mu = jax.random.normal(jax.random.key(0), (B, H))
  t = jnp.array([0, 3, 8, 8])
  assert reg(mu, t).shape == (B, D)
  graphdef, params = nnx.split(reg)
  g = jax.grad(lambda p: jnp.sum(nnx.merge(graphdef, p)(mu, t) ** 2))(nnx.to_pure_dict(params))
  _grads_all_nonzero(g)
  # The time input matters.
  assert not np.allclose(reg(mu, jnp.zeros(B, int)), reg(mu, jnp.full(B, 5)))


def test_bad_shapes_and_options_give_clear_errors():
  model = BehaviorModel(D, H, nnx.Rngs(0))
  with pytest.raises(ValueError, match=r'expected shape \(batch, frames, 51\)'):
    model.posterior(jnp.zeros((B, T, 17, 3)))
  with pytest.raises(ValueError, match='start posture'):
    model.decode(jnp.zeros((B, H)), jnp.zeros((B, 50)), 5)
  with pytest.raises(ValueError, match="lstm_impl='cudnn'"):
    BehaviorModel(D, H, nnx.Rngs(0), lstm_impl='cudnn')
