"""LSTM kernels for the behavior model (reference spec §2.1), fast on CPU, GPU and TPU.

Two recurrences are needed: the encoder LSTM over a known input sequence (only its final
state is used), and the decoder's fully autoregressive residual LSTM (the output of step t,
Linear(h) + input, is the input of step t+1). Each comes in two implementations with the same
maths:

* `*_reference`: a plain batch-major `lax.scan`, differentiated by JAX. Simple and obviously
  right; tests use it as the oracle and `model.lstm_impl='reference'` selects it.
* the default fused kernels, with a hand-written backward pass (`jax.custom_vjp`):
  - the recurrence runs feature-major (hidden state as (H, B)): on XLA:CPU the per-step
    (4H, H) @ (H, B) product runs at ~95% of the large-matmul rate, the batch-major
    (B, H) @ (H, 4H) one at ~70%;
  - input and recurrent matmuls are one (4H, I + H) @ (I + H, B) product per step (on CPU
    this beat hoisting the encoder's input projection out of the scan: the hoisted (T, 4H, B)
    tensor costs more memory traffic than the small matmul it saves);
  - weight gradients (and the encoder's input gradient) are not accumulated step by step
    (64-row outer products) but computed after the backward scan as large matmuls over all
    T*B rows; only the recurrent (H, 4H) @ (4H, B) product stays in the backward loop;
  - the forward saves only what the backward needs (gates, previous cell state, the matmul
    input), and the backward carries the next cell state instead of re-stacking it: at these
    sizes the step is otherwise bound by memory traffic, not by the matmuls.

Mixed precision: `dtype` (static) is the matmul operand type; None (the default) computes in
the inputs' own precision. With bfloat16 every matmul takes bf16 operands and accumulates in
float32; gates, cell states, the decoder's residual output stream and all returned gradients
stay float32 (parameters are float32).

Weights use PyTorch's gate order (input, forget, cell, output) with the input and recurrent
matrices stored side by side, w = [w_ih | w_hh] of shape (4H, I + H), and a single bias
(= bias_ih + bias_hh), so upstream checkpoints map one to one.
"""

import functools

import jax
import jax.numpy as jnp

from bds_jax.models.precision import accumulation as _acc
from bds_jax.models.precision import cast as _cast
from bds_jax.models.precision import matmul as _mm


def _gates(pre, axis):
  i, f, g, o = jnp.split(pre, 4, axis=axis)
  return jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)


def _cell_backward(gates, c_prev, c_new, dh, dc):
  """Backward of one LSTM cell, feature-major. Returns (dpre, dc_prev)."""
  i, f, g, o = jnp.split(gates, 4, axis=0)
  tc = jnp.tanh(c_new)
  do = dh * tc
  dc = dc + dh * o * (1.0 - tc * tc)
  di, df, dg = dc * g, dc * c_prev, dc * i
  dpre = jnp.concatenate(
      [di * i * (1.0 - i), df * f * (1.0 - f), dg * (1.0 - g * g), do * o * (1.0 - o)], axis=0)
  return dpre, dc * f


# ----------------------------------------------------------------------------------------------
# Reference implementations (batch-major, autodiff).
# ----------------------------------------------------------------------------------------------
def _cell_reference(x, h, c, w, b, dtype):
  in_dim = x.shape[-1]
  pre = _mm(x, w[:, :in_dim].T, dtype) + _mm(h, w[:, in_dim:].T, dtype) + b
  i, f, g, o = _gates(pre, axis=-1)
  c = f * c + i * g
  return o * jnp.tanh(c), c


def lstm_final_state_reference(x, w, b, h0, c0, dtype=None):
  """Runs an LSTM over x (B, T, I); returns its final hidden state (B, H)."""

  def step(carry, x_t):
    return _cell_reference(x_t, *carry, w, b, dtype), None

  (h, _), _ = jax.lax.scan(step, (h0, c0), jnp.swapaxes(x, 0, 1))
  return h


def residual_decoder_reference(w, b, w_out, b_out, x0, h0, c0, steps, dtype=None):
  """Autoregressive residual LSTM decoder; returns (B, steps, I).

  out_t = w_out h_{t+1} + b_out + in_t, and in_{t+1} = out_t, starting from in_0 = x0.
  """

  def step(carry, _):
    x, h, c = carry
    h, c = _cell_reference(x, h, c, w, b, dtype)
    x = _mm(h, w_out.T, dtype) + b_out + x
    return (x, h, c), x

  _, xs = jax.lax.scan(step, (x0, h0, c0), None, length=steps)
  return jnp.swapaxes(xs, 0, 1)


# ----------------------------------------------------------------------------------------------
# Shared forward step (feature-major).
# ----------------------------------------------------------------------------------------------
def _step_fm(w, bias, x, h, c, dtype):
  """One cell step. Returns (h_new, c_new, gates, xh) with xh = [x; h] the matmul input.

  w is already in the compute dtype; xh is cast to it (and stored so for the backward).
  """
  xh = _cast(jnp.concatenate([x, h], axis=0), dtype)
  gates = _gates(_mm(w, xh, dtype) + bias, axis=0)
  i, f, g, o = gates
  c_new = f * c + i * g
  return o * jnp.tanh(c_new), c_new, jnp.concatenate(gates, axis=0), xh


# ----------------------------------------------------------------------------------------------
# Fused encoder: final state only, custom VJP.
# ----------------------------------------------------------------------------------------------
@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _final_state_fm(xs, w, b, h0, c0, dtype):
  """xs: (T, I, B); w: (4H, I+H); b: (4H,); h0, c0: (H, B) -> final h (H, B)."""
  return _final_state_fm_fwd(xs, w, b, h0, c0, dtype)[0]


def _final_state_fm_fwd(xs, w, b, h0, c0, dtype):
  bias = b[:, None]
  w_c = _cast(w, dtype)

  def step(carry, x_t):
    h, c = carry
    h_new, c_new, gates, xh = _step_fm(w_c, bias, x_t, h, c, dtype)
    return (h_new, c_new), (gates, c, xh.T)

  (h, c), (gs, c_prev, xhs_bm) = jax.lax.scan(step, (h0, c0), xs)
  return h, (w, c, gs, c_prev, xhs_bm)


def _final_state_fm_bwd(dtype, res, dh):
  w, c_last, gs, c_prev, xhs_bm = res
  in_dim = w.shape[1] - c_last.shape[0]
  # Materialised once: the per-step product is a plain row-major matmul.
  w_hh_t = _cast(w[:, in_dim:].T, dtype)

  def step(carry, xs):
    dh, dc, c_new = carry
    g_t, c_p = xs
    dpre, dc = _cell_backward(g_t, c_p, c_new, dh, dc)
    dpre = _cast(dpre, dtype)
    return (_mm(w_hh_t, dpre, dtype), dc, c_p), dpre.T

  (dh0, dc0, _), dpres_bm = jax.lax.scan(
      step, (dh, jnp.zeros_like(dh), c_last), (gs, c_prev), reverse=True)
  # Weight and input gradients as large matmuls over all (t, b) after the scan; the scan wrote
  # batch-major copies (the transpose fuses into its elementwise work) so the contractions are
  # contiguous. The input gradient is dead code, removed by XLA, when x needs none.
  acc = _acc(dtype)
  dw = jnp.einsum('tbg,tbk->gk', dpres_bm, xhs_bm, preferred_element_type=acc)
  dxs = jnp.einsum('tbg,gi->tib', dpres_bm, _cast(w[:, :in_dim], dtype),
                   preferred_element_type=acc)
  return dxs, dw, dpres_bm.sum(axis=(0, 1), dtype=acc), dh0, dc0


_final_state_fm.defvjp(_final_state_fm_fwd, _final_state_fm_bwd)


def lstm_final_state(x, w, b, h0, c0, dtype=None):
  """Fused equivalent of `lstm_final_state_reference`: x (B, T, I) -> final h (B, H)."""
  return _final_state_fm(jnp.transpose(x, (1, 2, 0)), w, b, h0.T, c0.T, dtype).T


# ----------------------------------------------------------------------------------------------
# Fused autoregressive residual decoder: custom VJP.
# ----------------------------------------------------------------------------------------------
@functools.partial(jax.custom_vjp, nondiff_argnums=(7, 8))
def _decoder_fm(w, b, w_out, b_out, x0, h0, c0, steps, dtype):
  return _decoder_fm_fwd(w, b, w_out, b_out, x0, h0, c0, steps, dtype)[0]


def _decoder_fm_fwd(w, b, w_out, b_out, x0, h0, c0, steps, dtype):
  """w: (4H, I+H); w_out: (I, H); x0: (I, B); h0, c0: (H, B) -> outputs (steps, I, B)."""
  bias, bias_out = b[:, None], b_out[:, None]
  w_c, w_out_c = _cast(w, dtype), _cast(w_out, dtype)

  def step(carry, _):
    x, h, c = carry
    h_new, c_new, gates, xh = _step_fm(w_c, bias, x, h, c, dtype)
    # The residual output stream x stays float32: only the product is in the compute dtype.
    x_new = _mm(w_out_c, h_new, dtype) + bias_out + x
    return (x_new, h_new, c_new), (x_new, gates, c, xh.T)

  (_, h, c), (xs, gs, c_prev, xhs_bm) = jax.lax.scan(step, (x0, h0, c0), None, length=steps)
  return xs, (w, w_out, h, c, gs, c_prev, xhs_bm)


def _decoder_fm_bwd(steps, dtype, res, dxs):
  del steps
  w, w_out, h_last, c_last, gs, c_prev, xhs_bm = res
  in_dim = w_out.shape[0]
  w_t = _cast(w.T, dtype)
  w_out_t = _cast(w_out.T, dtype)

  def step(carry, xs):
    gx, gh, gc, c_new = carry
    dx_t, g_t, c_p = xs
    gy = dx_t + gx  # total gradient on this step's output (= next step's input)
    gh = gh + _mm(w_out_t, gy, dtype)
    dpre, gc = _cell_backward(g_t, c_p, c_new, gh, gc)
    dpre = _cast(dpre, dtype)
    dxh = _mm(w_t, dpre, dtype)  # autoregressive: the input gradient is needed in the loop
    return (gy + dxh[:in_dim], dxh[in_dim:], gc, c_p), (dpre.T, gy.T)

  zeros_h = jnp.zeros_like(h_last)
  (dx0, dh0, dc0, _), (dpres_bm, gys_bm) = jax.lax.scan(
      step, (jnp.zeros_like(dxs[0]), zeros_h, zeros_h, c_last), (dxs, gs, c_prev), reverse=True)
  # Weight gradients as large matmuls over all (t, b) after the scan. The output layer needs
  # h_{t+1}, which is the recurrent part of the next step's saved input (the last one, h_T, is
  # kept separately).
  acc = _acc(dtype)
  dw = jnp.einsum('tbg,tbk->gk', dpres_bm, xhs_bm, preferred_element_type=acc)
  dw_out = (jnp.einsum('tbi,tbh->ih', _cast(gys_bm[:-1], dtype), xhs_bm[1:, :, in_dim:],
                       preferred_element_type=acc)
            + _mm(gys_bm[-1].T, h_last.T, dtype))
  return (dw, dpres_bm.sum(axis=(0, 1), dtype=acc), dw_out, gys_bm.sum(axis=(0, 1)), dx0, dh0,
          dc0)


_decoder_fm.defvjp(_decoder_fm_fwd, _decoder_fm_bwd)


def residual_decoder(w, b, w_out, b_out, x0, h0, c0, steps, dtype=None):
  """Fused equivalent of `residual_decoder_reference`; returns (B, steps, I)."""
  xs = _decoder_fm(w, b, w_out, b_out, x0.T, h0.T, c0.T, steps, dtype)
  return jnp.transpose(xs, (2, 0, 1))
