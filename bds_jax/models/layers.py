"""Small layers shared by the models, with PyTorch-default initialisation.

Upstream initialises everything with PyTorch defaults (reference spec §2.1): Linear weights and
biases U(±1/√fan_in); LSTM weights and both bias vectors U(±1/√hidden). We match that so that
training dynamics (and the learning rates tuned for them) carry over.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from bds_jax.models import precision


def uniform(key, shape, bound, dtype=jnp.float32):
  return jax.random.uniform(key, shape, dtype, minval=-bound, maxval=bound)


def torch_linear(in_dim: int, out_dim: int, rngs: nnx.Rngs, dtype=None) -> nnx.Linear:
  """nnx.Linear initialised like torch.nn.Linear (kaiming-uniform a=√5, i.e. U(±1/√fan_in)).

  `dtype` is the computation dtype (None: float32); parameters stay float32.
  """
  bound = 1.0 / in_dim**0.5
  return nnx.Linear(
      in_dim, out_dim, rngs=rngs, dtype=dtype,
      kernel_init=lambda key, shape, dtype=jnp.float32: uniform(key, shape, bound, dtype),
      bias_init=lambda key, shape, dtype=jnp.float32: uniform(key, shape, bound, dtype))


class WeightNormLinear(nnx.Module):
  """Weight-normalised linear layer followed by a learned per-unit affine (upstream NormConv2d).

  y = gamma * (x @ W + bias) + beta with W = g * v / ||v|| (norm per output unit); g starts at
  ||v||, gamma at 1 and beta at 0, so at initialisation it is a plain linear layer.
  """

  def __init__(self, in_dim: int, out_dim: int, rngs: nnx.Rngs, dtype=None):
    bound = 1.0 / in_dim**0.5
    v = uniform(rngs.params(), (in_dim, out_dim), bound)
    self.dtype = dtype
    self.v = nnx.Param(v)
    self.g = nnx.Param(jnp.linalg.norm(v, axis=0))
    self.bias = nnx.Param(uniform(rngs.params(), (out_dim,), bound))
    self.gamma = nnx.Param(jnp.ones((out_dim,)))
    self.beta = nnx.Param(jnp.zeros((out_dim,)))

  def __call__(self, x):
    v = self.v[...]
    w = v * (self.g[...] / jnp.linalg.norm(v, axis=0))
    y = precision.matmul(x, w, self.dtype) + self.bias[...]
    return self.gamma[...] * y + self.beta[...]


class LSTMWeights(nnx.Module):
  """LSTM parameters: w = [w_ih | w_hh] of shape (4H, I + H) and one bias (4H,).

  PyTorch's layout and gate order (input, forget, cell, output), with the input and recurrent
  matrices side by side so each step is one matmul. The bias is b_ih + b_hh of PyTorch,
  initialised as the sum of two U(±1/√H) draws to keep PyTorch's initial distribution.
  """

  def __init__(self, in_dim: int, hidden: int, rngs: nnx.Rngs):
    bound = 1.0 / hidden**0.5
    self.w = nnx.Param(uniform(rngs.params(), (4 * hidden, in_dim + hidden), bound))
    self.b = nnx.Param(uniform(rngs.params(), (4 * hidden,), bound) +
                       uniform(rngs.params(), (4 * hidden,), bound))
