"""An optional body-centric frame for the behavior model (`model.frame = 'body'`).

The paper's model reads and writes poses as per-dimension z-scores of world coordinates. When
people stand anywhere in a room and face any way, a joint's x and y are dominated by where they
stand (σ ≈ 0.9 m on the synthetic data, against 5-10 cm of motion), so a small error in
z-scored units is a large error in metres, and the network must learn every behavior at every
heading. In the body frame each sequence is expressed relative to a reference pose (the
encoder: the sequence's first frame; the decoder: the start posture): translated so that the
reference pelvis is at the origin in x and y, and rotated about z so that the reference faces
+x (the forward direction is the hip axis turned 90°, as the synthetic generator and H3.6M
share a handedness). Heights are kept. x and y are then divided by a fixed `xy_scale` (metres)
and z is z-scored with the world statistics (z does not change). The decoder's output is turned
back to world z-scores, so losses, metrics and every caller are unchanged; only the model's
inside differs. Re-enactment is then equivariant to where the target stands and which way it
faces by construction.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from bds_jax import skeleton

FRAMES = ('world', 'body')
_L_HIP, _R_HIP = skeleton.JOINT_NAMES.index('l_hip'), skeleton.JOINT_NAMES.index('r_hip')


def reference_frame(pose):
  """(origin (..., 3) with z = 0, cos, sin (...,)) of world poses (..., 17, 3)."""
  left = pose[..., _L_HIP, :2] - pose[..., _R_HIP, :2]
  forward = jnp.stack([left[..., 1], -left[..., 0]], axis=-1)  # left turned -90° about z
  norm = jnp.linalg.norm(forward, axis=-1)
  ok = norm > 1e-6  # coincident hips: keep the world heading
  cos = jnp.where(ok, forward[..., 0] / jnp.where(ok, norm, 1.0), 1.0)
  sin = jnp.where(ok, forward[..., 1] / jnp.where(ok, norm, 1.0), 0.0)
  origin = jnp.concatenate([pose[..., 0, :2], jnp.zeros_like(pose[..., 0, :1])], axis=-1)
  return origin, cos, sin


def to_body(world, origin, cos, sin):
  """World poses (B, ..., 17, 3) into the frame (origin, cos, sin) of shape (B, ...)."""
  shape = origin.shape[:1] + (1,) * (world.ndim - 2) + (3,)  # broadcast over time and joints
  d = world - origin.reshape(shape)
  c = cos.reshape(shape[:-1])
  s = sin.reshape(shape[:-1])
  return jnp.stack([c * d[..., 0] + s * d[..., 1], -s * d[..., 0] + c * d[..., 1], d[..., 2]],
                   axis=-1)


def to_world(body, origin, cos, sin):
  """Inverse of `to_body`."""
  shape = origin.shape[:1] + (1,) * (body.ndim - 2) + (3,)
  c = cos.reshape(shape[:-1])
  s = sin.reshape(shape[:-1])
  w = jnp.stack([c * body[..., 0] - s * body[..., 1], s * body[..., 0] + c * body[..., 1],
                 body[..., 2]], axis=-1)
  return w + origin.reshape(shape)


@dataclasses.dataclass(frozen=True)
class BodyFrame:
  """World z-scores <-> body-frame z-scores, given the run's world normalisation.

  Fields are tuples so that the model's graph stays hashable (they become jit constants).
  """
  world_mean: tuple
  world_std: tuple
  xy_scale: float = 0.3

  @classmethod
  def create(cls, mean, std, xy_scale: float = 0.3) -> 'BodyFrame':
    mean, std = np.asarray(mean, np.float64).ravel(), np.asarray(std, np.float64).ravel()
    if mean.shape != (skeleton.POSE_DIM,) or std.shape != (skeleton.POSE_DIM,):
      raise ValueError(f'The body frame needs the run\'s ({skeleton.POSE_DIM},) normalisation '
                       f'mean and std, got {mean.shape} and {std.shape}.')
    if not xy_scale > 0:
      raise ValueError(f'model.body_xy_scale={xy_scale!r} must be > 0 (metres).')
    return cls(tuple(mean.tolist()), tuple(std.tolist()), float(xy_scale))

  def _stats(self):
    m = jnp.asarray(self.world_mean, jnp.float32).reshape(skeleton.NUM_JOINTS, 3)
    s = jnp.asarray(self.world_std, jnp.float32).reshape(skeleton.NUM_JOINTS, 3)
    return m, s

  def _body_scale(self):
    m, s = self._stats()
    zero = jnp.zeros_like(m[:, :2])
    mean = jnp.concatenate([zero, m[:, 2:]], axis=-1)
    scale = jnp.concatenate([jnp.full_like(s[:, :2], self.xy_scale), s[:, 2:]], axis=-1)
    return mean, scale

  def world(self, x):
    """World z-scores (..., 51) -> metres (..., 17, 3)."""
    m, s = self._stats()
    return x.reshape(*x.shape[:-1], skeleton.NUM_JOINTS, 3).astype(jnp.float32) * s + m

  def frame_of(self, x_ref):
    """The reference frame of world z-scored poses (B, 51); no gradient flows through it."""
    return jax.tree.map(jax.lax.stop_gradient, reference_frame(self.world(x_ref)))

  def encode(self, x, frame):
    """World z-scores (B, ..., 51) -> body-frame z-scores in `frame`."""
    mean, scale = self._body_scale()
    body = (to_body(self.world(x), *frame) - mean) / scale
    return body.reshape(*x.shape[:-1], skeleton.POSE_DIM)

  def decode(self, y, frame):
    """Body-frame z-scores (B, ..., 51) in `frame` -> world z-scores."""
    mean, scale = self._body_scale()
    body = y.reshape(*y.shape[:-1], skeleton.NUM_JOINTS, 3).astype(jnp.float32) * scale + mean
    m, s = self._stats()
    return ((to_world(body, *frame) - m) / s).reshape(*y.shape[:-1], skeleton.POSE_DIM)
