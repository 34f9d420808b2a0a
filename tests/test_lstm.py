"""The fused custom-VJP LSTM kernels equal the plain-scan references, values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bds_jax.models import lstm

SHAPES = [(3, 7, 5, 6), (1, 1, 4, 8), (4, 12, 51, 16)]  # batch, steps, in_dim, hidden


def _params(key, batch, steps, in_dim, hidden):
  k = jax.random.split(key, 8)
  s = 1.0 / hidden**0.5
  u = lambda kk, shape: jax.random.uniform(kk, shape, minval=-s, maxval=s)
  return dict(x=jax.random.normal(k[0], (batch, steps, in_dim)),
              w=u(k[1], (4 * hidden, in_dim + hidden)), b=u(k[2], (4 * hidden,)),
              h0=jax.random.normal(k[3], (batch, hidden)),
              c0=jax.random.normal(k[4], (batch, hidden)), w_out=u(k[5], (in_dim, hidden)),
              b_out=u(k[6], (in_dim,)), cot=k[7])


def _check_grads(fast, ref, args, cot_shape, cot_key):
  cot = jax.random.normal(cot_key, cot_shape)
  loss = lambda fn: lambda *a: jnp.sum(fn(*a) * cot)
  n = len(args)
  g_fast = jax.grad(loss(fast), argnums=range(n))(*args)
  g_ref = jax.grad(loss(ref), argnums=range(n))(*args)
  for a, b in zip(g_fast, g_ref):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert np.abs(b).max() > 0


@pytest.mark.parametrize('batch,steps,in_dim,hidden', SHAPES)
def test_encoder_matches_reference(batch, steps, in_dim, hidden):
  p = _params(jax.random.key(batch + steps), batch, steps, in_dim, hidden)
  args = (p['x'], p['w'], p['b'], p['h0'], p['c0'])
  np.testing.assert_allclose(lstm.lstm_final_state(*args),
                             lstm.lstm_final_state_reference(*args), rtol=1e-5, atol=1e-6)
  _check_grads(lstm.lstm_final_state, lstm.lstm_final_state_reference, args, (batch, hidden),
               p['cot'])


@pytest.mark.parametrize('batch,steps,in_dim,hidden', SHAPES)
def test_decoder_matches_reference(batch, steps, in_dim, hidden):
  p = _params(jax.random.key(7 * batch + steps), batch, steps, in_dim, hidden)
  args = (p['w'], p['b'], p['w_out'], p['b_out'], p['x'][:, 0], p['h0'], p['c0'])
  fast = lambda *a: lstm.residual_decoder(*a, steps)
  ref = lambda *a: lstm.residual_decoder_reference(*a, steps)
  np.testing.assert_allclose(fast(*args), ref(*args), rtol=1e-5, atol=1e-5)
  _check_grads(fast, ref, args, (batch, steps, in_dim), p['cot'])


def test_kernels_are_exact_in_float64():
  """In float64 the hand-written backward equals autodiff to round-off (no approximation)."""
  with jax.enable_x64(True):
    p = jax.tree.map(lambda a: a.astype(jnp.float64) if a.dtype == jnp.float32 else a,
                     _params(jax.random.key(0), 3, 6, 5, 7))
    args = (p['w'], p['b'], p['w_out'], p['b_out'], p['x'][:, 0], p['h0'], p['c0'])
    cot = jax.random.normal(p['cot'], (3, 6, 5), jnp.float64)
    loss = lambda fn: lambda *a: jnp.sum(fn(*a, 6) * cot)
    for a, b in zip(jax.grad(loss(lstm.residual_decoder), argnums=range(7))(*args),
                    jax.grad(loss(lstm.residual_decoder_reference), argnums=range(7))(*args)):
      np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_decoder_is_autoregressive_and_residual():
  """Zero output weights make every step copy its input; a bias accumulates linearly."""
  p = _params(jax.random.key(0), 2, 5, 3, 4)
  zeros = jnp.zeros_like(p['w_out'])
  out = lstm.residual_decoder(p['w'], p['b'], zeros, jnp.zeros(3), p['x'][:, 0], p['h0'],
                              p['c0'], 5)
  np.testing.assert_allclose(out, jnp.repeat(p['x'][:, :1], 5, axis=1), atol=1e-6)
  b_out = jnp.arange(3.0)
  out = lstm.residual_decoder(p['w'], p['b'], zeros, b_out, p['x'][:, 0], p['h0'], p['c0'], 5)
  np.testing.assert_allclose(out[:, 4], p['x'][:, 0] + 5 * b_out, atol=1e-5)
