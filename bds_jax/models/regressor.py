"""Adversarial posture regressor p_psi(x_t | mu, t) (reference spec §2.2, `Regressor_fly`).

It predicts the pose at frame t from the posterior mean and a one-hot encoding of t. The
behavior encoder is trained to make this prediction hard, so that z carries dynamics rather
than posture. Upstream layout: mu -> 1024 -> 512 -> 256 (ReLU each); one_hot(t) -> 128 (ReLU);
concatenation -> Linear -> pose. Widths are configurable.
"""

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from bds_jax.models import layers
from bds_jax.models import precision


class PostureRegressor(nnx.Module):
  """(mu (B, Z), t (B,) int) -> pose (B, D)."""

  def __init__(self, latent_dim: int, pose_dim: int, num_frames: int,
               widths: Sequence[int], time_width: int, rngs: nnx.Rngs,
               compute_dtype: str = 'float32'):
    dtype = precision.resolve(compute_dtype)
    dims = (latent_dim, *widths)
    self.code_mlp = nnx.List(
        [layers.torch_linear(a, b, rngs, dtype) for a, b in zip(dims[:-1], dims[1:])])
    self.time_mlp = layers.torch_linear(num_frames, time_width, rngs, dtype)
    self.head = layers.torch_linear(dims[-1] + time_width, pose_dim, rngs, dtype)
    self.num_frames = num_frames

  def __call__(self, mu, t):
    h = mu
    for layer in self.code_mlp:
      h = jax.nn.relu(layer(h))
    ht = jax.nn.relu(self.time_mlp(jax.nn.one_hot(t, self.num_frames, dtype=mu.dtype)))
    return self.head(jnp.concatenate([h, ht], axis=-1)).astype(jnp.float32)
