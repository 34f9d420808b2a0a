"""Where each part crop lands in a target pose: per-pixel crop coordinates for the part warp.

The part crops of bds_jax/imaging/inplane.py cut each body part of the appearance frame out
along its limb. The same quads drawn from a *target* frame's keypoints say where each part
lies in the target; the homography from the target's quad to the crop tells every target
pixel which crop pixel shows it. `part_coordinates` returns that map, computed from the target
keypoints alone (like the stickman), so that the appearance model can sample any person's
crops into this pose (models/appearance.py, model.part_warp): the striped shirt reaches the
decoder at the pixels where the target's torso is, not only through a global code. This is
the input-space form of the deformable skip connections of pose-guided person synthesis
(Siarohin et al., CVPR 2018); the VUnet of the paper has nothing like it.

Per part, three channels: (u, v, inside), u and v the crop pixel's column and row over
(crop_size - 1), in [0, 1] where inside is 1, and all three 0 outside the part's quad or for
a part that cannot be located.
"""

import numpy as np

from bds_jax.imaging import inplane
from bds_jax.imaging import keypoints as keypoints_lib
from bds_jax.imaging import layouts

CHANNELS_PER_PART = 3


def part_coordinates(keypoints, size: int, crop_size: int, valid=None,
                     layout: layouts.KeypointLayout = layouts.H36M_17,
                     geometry: str = 'ours') -> np.ndarray:
  """(size, size, 3·10) float32 crop coordinates of the 10 parts (module docstring).

  `keypoints` (J, 2) in the target's pixels, `crop_size` the side of the crops that will be
  sampled (data's S / 2^box_factor), `geometry` how they were cut (data.crop_geometry).
  """
  height, width = keypoints_lib.image_size(size)
  warps = inplane.part_warps(keypoints, height, crop_size, valid, layout, geometry)
  out = np.zeros((height, width, len(warps), CHANNELS_PER_PART), np.float32)
  parts, to_crop, side = [], [], []
  for p, warp in enumerate(warps):
    h = None if warp is None else inplane.homography(*warp)
    if h is None:
      continue
    parts.append(p)
    to_crop.append(h)
    # The quad is convex, so its pixels' w share one sign; beyond the horizon w flips and
    # (u, v) can land in the crop again: those pixels are not the part.
    side.append(np.sign(np.mean(np.c_[warp[0], np.ones(4)] @ h[2])))
  if not parts:
    return out.reshape(height, width, -1)
  to_crop, side = np.stack(to_crop), np.array(side)                 # (P', 3, 3), (P',)
  y, x = np.mgrid[0:height, 0:width].astype(np.float64)
  uvw = (x[..., None, None] * to_crop[:, :, 0] + y[..., None, None] * to_crop[:, :, 1]
         + to_crop[:, :, 2])                                        # (H, W, P', 3)
  w = uvw[..., 2]
  with np.errstate(divide='ignore', invalid='ignore'):
    u, v = uvw[..., 0] / w, uvw[..., 1] / w
  last = crop_size - 1.0
  inside = ((w * side > 0) & (u >= 0) & (u <= last) & (v >= 0) & (v <= last)
            & np.isfinite(u) & np.isfinite(v))
  out[:, :, parts, 0] = np.where(inside, u / last, 0.0)
  out[:, :, parts, 1] = np.where(inside, v / last, 0.0)
  out[:, :, parts, 2] = inside
  return out.reshape(height, width, -1)
