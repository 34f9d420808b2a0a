"""Where the performance happens: room position, heading, planted feet and the floor."""

import numpy as np

from bds_jax import skeleton
from bds_jax.procedural import checks

ROOM_HALF_SIZE = 1.5  # metres; the start position is uniform in the square ±this
_FEET = (3, 6)


def placement(placement_seed: int) -> tuple[float, float, float]:
  """(x, y, heading): the start position of the feet (metres) and facing angle (radians)."""
  rng = np.random.default_rng(checks.integer(placement_seed, 'placement_seed', 0))
  x, y = rng.uniform(-ROOM_HALF_SIZE, ROOM_HALF_SIZE, 2)
  return float(x), float(y), float(rng.uniform(-np.pi, np.pi))


def _softmax(logits: np.ndarray) -> np.ndarray:
  e = np.exp(logits - logits.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


def place(local: np.ndarray, x: float, y: float) -> np.ndarray:
  """Puts pelvis-centred poses (T, 17, 3) into the room with the feet planted.

  The pelvis moves horizontally so that the foot carrying the weight stays fixed on the floor,
  and vertically so that the lowest foot is at z = 0.
  """
  feet = local[:, _FEET]
  # Soft choice of the supporting foot: the lower and slower one (relative to the pelvis), or
  # both equally when they are level and move alike (as in a squat).
  if len(feet) > 1:
    speed = np.linalg.norm(np.gradient(feet[..., :2], axis=0), axis=-1) * skeleton.FPS
  else:
    speed = np.zeros(feet.shape[:2])
  weight = _softmax(-feet[..., 2] / 0.005 - speed / 0.05)
  step_weight = 0.5 * (weight[1:] + weight[:-1])
  slide = np.sum(step_weight[..., None] * np.diff(feet[..., :2], axis=0), axis=1)
  shift = -np.concatenate([np.zeros((1, 2)), np.cumsum(slide, axis=0)])
  # Frame 0 is placed by foot heights alone, so it cannot depend on the motion that follows.
  rest_weight = _softmax(-feet[0, :, 2] / 0.005)
  anchor0 = np.sum(rest_weight[:, None] * feet[0, :, :2], axis=0)
  out = local.copy()
  out[..., :2] += (np.array([x, y]) - anchor0 + shift)[:, None]
  out[..., 2] -= feet[..., 2].min(axis=1)[:, None]
  return out
