"""Plain-function GRU layers in PyTorch's convention, for the metric probes and classifiers.

The realism probe (a GRU(51 -> 256), reference spec §5.3) and the BeLFusion FID classifier (a
2-layer GRU(48 -> 128), stochastic-HMP spec §3.8) are both PyTorch `nn.GRU`s upstream. Keeping
PyTorch's parameter layout lets a converted checkpoint load one to one:

  weight_ih (3H, I), weight_hh (3H, H), bias_ih (3H,), bias_hh (3H,), gate rows ordered
  (reset r, update z, candidate n);
  r = σ(W_ir x + b_ir + W_hr h + b_hr),  z = σ(W_iz x + b_iz + W_hz h + b_hz),
  n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),  h' = (1 − z) ⊙ n + z ⊙ h.

Note that r multiplies the *recurrent* candidate term including its bias b_hn, which is why
the two bias vectors cannot be merged (unlike an LSTM's).
"""

import jax
import jax.numpy as jnp

from bds_jax.models import layers


def init_gru_layer(key, in_dim: int, hidden: int) -> dict:
  """PyTorch-default initialisation: every weight and bias U(±1/√hidden)."""
  bound = 1.0 / hidden**0.5
  k = jax.random.split(key, 4)
  return {
      'weight_ih': layers.uniform(k[0], (3 * hidden, in_dim), bound),
      'weight_hh': layers.uniform(k[1], (3 * hidden, hidden), bound),
      'bias_ih': layers.uniform(k[2], (3 * hidden,), bound),
      'bias_hh': layers.uniform(k[3], (3 * hidden,), bound),
  }


def gru_layer(params: dict, x, h0):
  """Runs one GRU layer over x (B, T, I) from h0 (B, H); returns all outputs (B, T, H)."""
  # The input projection does not depend on h, so it is one big matmul outside the loop.
  gi = jnp.einsum('bti,gi->tbg', x, params['weight_ih']) + params['bias_ih']
  w_hh, b_hh = params['weight_hh'], params['bias_hh']

  def step(h, gi_t):
    gh = h @ w_hh.T + b_hh
    ir, iz, in_ = jnp.split(gi_t, 3, axis=-1)
    hr, hz, hn = jnp.split(gh, 3, axis=-1)
    r = jax.nn.sigmoid(ir + hr)
    z = jax.nn.sigmoid(iz + hz)
    n = jnp.tanh(in_ + r * hn)
    h = (1.0 - z) * n + z * h
    return h, h

  _, hs = jax.lax.scan(step, h0, gi)
  return jnp.swapaxes(hs, 0, 1)


def gru_stack_last_output(layer_params: list, x, h0=None):
  """Stacked GRU layers over x (B, T, I); returns the top layer's output at the last step (B, H).

  h0, if given, is (num_layers, B, H) as in PyTorch; None means zeros.
  """
  out = x
  for i, p in enumerate(layer_params):
    hidden = p['weight_hh'].shape[1]
    h = jnp.zeros((x.shape[0], hidden), x.dtype) if h0 is None else h0[i]
    out = gru_layer(p, out, h)
  return out[:, -1]
