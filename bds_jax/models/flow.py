"""RealNVP-style normalizing flow T over behavior codes (reference spec §3), from distrax bijectors.

T maps a behavior code z to u, with u ~ N(0, I) when z follows the posterior codes; sampling
goes the other way: z = T^-1(u). Each of the `num_blocks` blocks is, in the normalizing
direction z -> u:
  1. ActNorm: h = scale * (x + loc), initialised from a real batch of codes so that its
     output has zero mean and unit variance (not lazily inside apply);
  2. a double affine coupling with upstream's exact half order:
       [a, b] -> [a, b * exp(s0(a)) + t0(a)] -> swap -> [b', a * exp(s1(b')) + t1(b')],
     log-scales tanh-bounded to (-1, 1), s and t MLPs with LeakyReLU(0.01);
  3. a fixed random permutation of the channels.
MLP depth and width are configurable: the paper describes 2 linear layers of width 1024 per
net; the upstream code uses 4 of width 2048 (~630M parameters for a 1024-d code).
"""

import math

import distrax
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from bds_jax.models import layers
from bds_jax.models import precision


class FixedPermutation(nnx.Variable):
  """A non-trainable index array (the shuffle layers)."""


class ActNorm(distrax.Bijector):
  """Per-channel affine y = scale * (x + loc); log|det| = sum(log|scale|)."""

  def __init__(self, loc, scale):
    super().__init__(event_ndims_in=1)
    self.loc = loc
    self.scale = scale

  def forward_and_log_det(self, x):
    log_det = jnp.sum(jnp.log(jnp.abs(self.scale)))
    return self.scale * (x + self.loc), jnp.broadcast_to(log_det, x.shape[:-1])

  def inverse_and_log_det(self, y):
    log_det = -jnp.sum(jnp.log(jnp.abs(self.scale)))
    return y / self.scale - self.loc, jnp.broadcast_to(log_det, y.shape[:-1])


class Permute(distrax.Bijector):
  """y = x[..., perm]: volume preserving."""

  def __init__(self, perm):
    super().__init__(event_ndims_in=1, is_constant_jacobian=True)
    self.perm = perm
    self.inverse_perm = jnp.argsort(perm)

  def forward_and_log_det(self, x):
    return x[..., self.perm], jnp.zeros(x.shape[:-1], x.dtype)

  def inverse_and_log_det(self, y):
    return y[..., self.inverse_perm], jnp.zeros(y.shape[:-1], y.dtype)


class MLP(nnx.Module):
  """`num_layers` linear layers with LeakyReLU(0.01) between them; optional tanh output."""

  def __init__(self, in_dim: int, width: int, out_dim: int, num_layers: int, tanh: bool,
               rngs: nnx.Rngs, dtype=None):
    if num_layers < 2:
      raise ValueError(f'flow.num_layers={num_layers}: each coupling net needs >= 2 layers.')
    dims = [in_dim] + [width] * (num_layers - 1) + [out_dim]
    self.layers = nnx.List(
        [layers.torch_linear(a, b, rngs, dtype) for a, b in zip(dims[:-1], dims[1:])])
    self.tanh = tanh

  def __call__(self, x):
    for layer in self.layers[:-1]:
      x = jax.nn.leaky_relu(layer(x), 0.01)
    x = self.layers[-1](x).astype(jnp.float32)  # the affine transform itself is float32
    return jnp.tanh(x) if self.tanh else x


class _HalfCoupling(nnx.Module):
  """Conditioner of one half-coupling: (log_scale, shift) = (tanh s(x_a), t(x_a))."""

  def __init__(self, half: int, width: int, num_layers: int, rngs: nnx.Rngs, dtype=None):
    self.s = MLP(half, width, half, num_layers, tanh=True, rngs=rngs, dtype=dtype)
    self.t = MLP(half, width, half, num_layers, tanh=False, rngs=rngs, dtype=dtype)

  def __call__(self, x_a):
    return self.s(x_a), self.t(x_a)

  def bijector(self, dim: int):
    return distrax.SplitCoupling(
        split_index=dim // 2, event_ndims=1, conditioner=self,
        bijector=lambda p: distrax.ScalarAffine(shift=p[1], log_scale=p[0]))


class FlowBlock(nnx.Module):

  def __init__(self, dim: int, width: int, num_layers: int, perm: np.ndarray, rngs: nnx.Rngs,
               dtype=None):
    half = dim // 2
    self.loc = nnx.Param(jnp.zeros((dim,)))
    self.scale = nnx.Param(jnp.ones((dim,)))
    self.coupling0 = _HalfCoupling(half, width, num_layers, rngs, dtype)
    self.coupling1 = _HalfCoupling(half, width, num_layers, rngs, dtype)
    self.perm = FixedPermutation(jnp.asarray(perm, jnp.int32))
    swap = np.concatenate([np.arange(half, dim), np.arange(half)])
    self.swap = FixedPermutation(jnp.asarray(swap, jnp.int32))
    self.dim = dim

  def bijectors(self):
    """This block's bijectors in the order they are applied (normalizing direction)."""
    return [ActNorm(self.loc[...], self.scale[...]), self.coupling0.bijector(self.dim),
            Permute(self.swap[...]), self.coupling1.bijector(self.dim), Permute(self.perm[...])]


class FlowPrior(nnx.Module):
  """T: z -> u. `bijector()` is the distrax bijector of T; `distribution()` the prior over z."""

  def __init__(self, dim: int, num_blocks: int, width: int, num_layers: int, rngs: nnx.Rngs,
               seed: int = 0, compute_dtype: str = 'float32'):
    if dim % 2:
      raise ValueError(f'The flow needs an even code size, got {dim}.')
    dtype = precision.resolve(compute_dtype)
    perms = np.random.default_rng(seed)
    self.blocks = nnx.List([FlowBlock(dim, width, num_layers, perms.permutation(dim), rngs,
                                      dtype) for _ in range(num_blocks)])
    self.dim = dim

  def bijector(self, upto: int | None = None):
    """distrax bijector of T (z -> u), optionally of the first `upto` blocks only."""
    bs = [b for block in self.blocks[:upto] for b in block.bijectors()]
    return distrax.Chain(bs[::-1])  # Chain applies its last element first

  def forward(self, z):
    """u, log|det dT/dz| for codes z (B, D)."""
    return self.bijector().forward_and_log_det(z)

  def inverse(self, u):
    """z = T^-1(u) and log|det dT^-1/du|."""
    return self.bijector().inverse_and_log_det(u)

  def distribution(self):
    """The prior over codes: N(0, I) pushed through T^-1 (a distrax.Transformed)."""
    base = distrax.MultivariateNormalDiag(jnp.zeros((self.dim,)), jnp.ones((self.dim,)))
    return distrax.Transformed(base, distrax.Inverse(self.bijector()))

  def sample(self, key, n: int):
    u = jax.random.normal(key, (n, self.dim))
    return self.inverse(u)[0]


def nll_terms(flow: FlowPrior, z):
  """Upstream's loss split: mean 0.5||T(z)||^2 and mean log|det| (no 0.5 D log 2pi)."""
  u, log_det = flow.forward(z)
  return 0.5 * jnp.mean(jnp.sum(u * u, axis=-1)), jnp.mean(log_det)


def log_prob(flow: FlowPrior, z):
  """Exact log-density of codes z under the flow prior, in nats."""
  u, log_det = flow.forward(z)
  d = z.shape[-1]
  return -0.5 * jnp.sum(u * u, axis=-1) - 0.5 * d * math.log(2 * math.pi) + log_det


def initialize_actnorm(flow: FlowPrior, z, eps: float = 1e-6):
  """Data-dependent ActNorm init, block by block, on a real batch of codes z (B, D).

  Each ActNorm gets loc = -mean and scale = 1 / (std + eps) of its own input (the output of
  the already-initialised blocks before it), so its output has zero mean and unit variance on
  this batch. Unbiased std, as upstream. Mutates `flow` in place and returns it.
  """
  if z.ndim != 2 or z.shape[-1] != flow.dim or z.shape[0] < 2:
    raise ValueError(f'ActNorm init needs a batch of codes (B >= 2, {flow.dim}), got {z.shape}.')
  x = z
  for block in flow.blocks:
    block.loc[...] = -jnp.mean(x, axis=0)
    block.scale[...] = 1.0 / (jnp.std(x, axis=0, ddof=1) + eps)
    for bij in block.bijectors():
      x = bij.forward(x)
  return flow
