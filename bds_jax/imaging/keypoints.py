"""Argument checks for 2D keypoints, validity masks and image sizes (all raise ValueError).

Pixel convention shared by every image module: pixel (row i, column j) has its centre at
x = j, y = i, so a keypoint (x, y) in pixels can be compared with array indices directly.
"""

import numbers

import numpy as np

from bds_jax import skeleton


def image_size(size, what: str = 'size') -> tuple[int, int]:
  """(height, width) from an int (square) or an (height, width) pair of positive ints."""
  if isinstance(size, numbers.Integral) and not isinstance(size, bool):
    size = (int(size), int(size))
  if (not isinstance(size, (tuple, list)) or len(size) != 2
      or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in size)
      or min(size) < 1):
    raise ValueError(f'{what}={size!r}: expected a positive int (square image) or a '
                     '(height, width) pair of positive ints.')
  return int(size[0]), int(size[1])


def keypoints_and_mask(keypoints, valid=None, what: str = 'keypoints',
                       num_joints: int = skeleton.NUM_JOINTS) -> tuple[np.ndarray, np.ndarray]:
  """Checks (J, 2) pixel keypoints; returns them as float64 and a (J,) bool validity mask.

  J is `num_joints`: 17 (bds_jax.skeleton) unless a 2D layout (imaging/layouts.py) says
  otherwise.

  Without `valid`, a joint is valid when both coordinates are >= 0 (the upstream convention,
  which marks missing joints with negative coordinates). NaN or inf is allowed only in joints
  that `valid` marks missing.
  """
  keypoints = np.asarray(keypoints, dtype=np.float64)
  if keypoints.shape != (num_joints, 2):
    which = ('the 17 H3.6M joints of bds_jax.skeleton' if num_joints == skeleton.NUM_JOINTS
             else f'the {num_joints} joints of its layout')
    raise ValueError(
        f'{what}: expected shape ({num_joints}, 2) ({which}, x and y in pixels), got '
        f'{keypoints.shape}.')
  finite = np.all(np.isfinite(keypoints), axis=-1)
  if valid is None:
    if not finite.all():
      raise ValueError(
          f'{what}: joints {np.flatnonzero(~finite).tolist()} are NaN or inf; mark missing '
          'joints with negative coordinates or pass a `valid` mask.')
    mask = np.all(keypoints >= 0, axis=-1)
  else:
    mask = np.asarray(valid)
    if mask.shape != (num_joints,) or mask.dtype != bool:
      raise ValueError(f'valid: expected a ({num_joints},) bool mask, got '
                       f'{mask.dtype} {mask.shape}.')
    if not finite[mask].all():
      raise ValueError(
          f'{what}: joints {np.flatnonzero(mask & ~finite).tolist()} are marked valid but are '
          'NaN or inf.')
  return np.where(mask[:, None], keypoints, 0.0), mask.copy()


def check_image(image, what: str = 'image') -> np.ndarray:
  """An (H, W, C) uint8 or floating image, returned unchanged (as an array)."""
  image = np.asarray(image)
  if image.ndim != 3 or min(image.shape) < 1:
    raise ValueError(f'{what}: expected an (height, width, channels) array, got shape '
                     f'{image.shape}.')
  if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
    raise ValueError(f'{what}: expected uint8 or floating pixels, got {image.dtype}.')
  if np.issubdtype(image.dtype, np.floating) and not np.all(np.isfinite(image)):
    raise ValueError(f'{what}: contains NaN or inf pixels.')
  return image
