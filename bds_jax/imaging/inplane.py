"""In-plane normalisation: 10 perspective-warped body-part crops stacked on the channel axis.

Reference spec §1.8 (`inplane_normalize`, used for DeepFashion and Market). Each part is a
quadrilateral in the image, warped onto a square crop of side S / 2^box_factor with bilinear
sampling and replicated borders; a part that cannot be located gives an all-zero crop. Crops
are concatenated in PARTS order, so an RGB image gives 30 channels.

Parts for the 17-joint layout (upstream's DeepFashion definitions with our joints):
  * torso: the quad (r_hip, r_shoulder, l_shoulder, l_hip) onto the crop corners (0,0),
    (1,0), (1,1), (0,1), as upstream; for a frontal person this lays the torso on its side
    (hips in the left column, shoulders in the right one). Any torso joint missing: zeros.
  * head: neck = the shoulder midpoint, top = the head-top joint (upstream: neck + 2·(nose -
    neck); our head-top joint plays that role). A rectangle along top -> neck with half-width
    |top - neck| / 2. With the head missing, a box of side |shoulder line| above the shoulder
    midpoint; with a shoulder missing, zeros.
  * 8 limbs (upper arm, forearm right then left, thigh, shin right then left): a rectangle
    along joint_i -> joint_j with half-width |j - i| / 4. With one joint missing the segment
    runs from the valid joint straight down to the image's bottom row; both missing: zeros.
Segments map top-to-bottom onto the crop without mirroring (the first joint on row 0).

The 18-joint layouts (DeepFashion, Market; imaging/layouts.py) use the same parts in the same
order, with upstream's head rule: top = neck + 2·(nose - neck).
"""

import numpy as np

from bds_jax.imaging import keypoints as keypoints_lib
from bds_jax.imaging import layouts
from bds_jax.imaging import stickman as sm

_LIMBS = ((sm.R_SHOULDER, sm.R_ELBOW), (sm.R_ELBOW, sm.R_WRIST),
          (sm.L_SHOULDER, sm.L_ELBOW), (sm.L_ELBOW, sm.L_WRIST),
          (sm.R_HIP, sm.R_KNEE), (sm.R_KNEE, sm.R_FOOT),
          (sm.L_HIP, sm.L_KNEE), (sm.L_KNEE, sm.L_FOOT))
PARTS = ('torso', 'head', 'r_upper_arm', 'r_forearm', 'l_upper_arm', 'l_forearm',
         'r_thigh', 'r_shin', 'l_thigh', 'l_shin')
TORSO_QUAD = (sm.R_HIP, sm.R_SHOULDER, sm.L_SHOULDER, sm.L_HIP)
assert layouts.H36M_17.torso_quad == TORSO_QUAD and layouts.H36M_17.limbs == _LIMBS
_UNIT_SQUARE = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
_EPS = 1e-6  # pixels; shorter segments and flatter quads count as missing


def _strip(a, b, half_width_factor: float):
  """Quad around segment a -> b mapped to the unit square's corners (a on the top row)."""
  d = b - a
  length = np.hypot(*d)
  if length < _EPS:
    return None
  n = np.array([-d[1], d[0]]) / length * (half_width_factor * length)
  # n is d turned by +90°: a + n -> (0,0) and a - n -> (1,0) make the map a rotation (plus
  # scaling), never a mirror, so left and right stay as in the image.
  return np.array([a + n, a - n, b - n, b + n])


def part_quads(keypoints, image_height: int, valid=None,
               layout: layouts.KeypointLayout = layouts.H36M_17) -> list:
  """Source quads (4, 2) in pixels of the 10 PARTS (None for a part that is missing).

  Corner k of a quad maps onto corner k of the unit square (0,0), (1,0), (1,1), (0,1).
  """
  points, mask = keypoints_lib.keypoints_and_mask(keypoints, valid,
                                                  num_joints=layout.num_joints)
  torso = list(layout.torso_quad)
  quads = [points[torso] if mask[torso].all() else None]

  rs, ls, top_joint = layout.r_shoulder, layout.l_shoulder, layout.head_top
  if mask[ls] and mask[rs]:
    neck = 0.5 * (points[ls] + points[rs])
    if mask[top_joint]:
      top = points[top_joint]
      if layout.head_mode == 'nose':  # upstream: the nose is mid-face; the crown is twice as far
        top = neck + 2.0 * (top - neck)
    else:  # a box above the shoulder line
      top = neck - np.array([0.0, np.hypot(*(points[ls] - points[rs]))])
    quads.append(_strip(top, neck, 0.5))
  else:
    quads.append(None)

  bottom = image_height - 1.0
  for i, j in layout.limbs:
    a, b = points[i], points[j]
    if mask[i] and not mask[j]:
      b = np.array([a[0], bottom])
    elif mask[j] and not mask[i]:
      a = np.array([b[0], bottom])
    quads.append(_strip(a, b, 0.25) if (mask[i] or mask[j]) else None)
  return quads


def homography(src, dst) -> np.ndarray | None:
  """3x3 H with H·[src_k, 1] ∝ [dst_k, 1] for 4 point pairs; None when degenerate."""
  src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
  for pts in (src, dst):
    for k in range(4):  # no three corners collinear, else no unique homography
      p, q, r = pts[k], pts[(k + 1) % 4], pts[(k + 2) % 4]
      if abs((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])) < _EPS:
        return None
  rows, rhs = [], []
  for (x, y), (u, v) in zip(src, dst):
    rows.append([x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y])
    rows.append([0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y])
    rhs += [u, v]
  return np.append(np.linalg.solve(np.array(rows), np.array(rhs)), 1.0).reshape(3, 3)


def warp_quad(image, quad, crop_size: int) -> np.ndarray:
  """Warps the image region inside `quad` onto a crop_size² square (float64).

  Quad corner k lands on the centre of crop corner pixel k of (0,0), (1,0), (1,1), (0,1)
  (x, y), scaled by crop_size - 1. Sampling is bilinear; outside the image the border pixel
  is repeated (OpenCV's BORDER_REPLICATE). Returns zeros when the quad is degenerate (three
  corners collinear) or folded (not convex), which upstream's warp would turn into smears.
  """
  image = np.asarray(image)
  crop = np.zeros((crop_size, crop_size, image.shape[-1]))
  if quad is None:
    return crop
  to_src = homography(_UNIT_SQUARE * (crop_size - 1), quad)
  if to_src is None:
    return crop
  y, x = np.mgrid[0:crop_size, 0:crop_size].astype(np.float64)
  src = np.stack([x, y, np.ones_like(x)], axis=-1) @ to_src.T
  w = src[..., 2]
  if w.min() * w.max() <= 0 or np.abs(w).min() < _EPS:
    return crop  # a folded (non-convex) quad: part of the crop would map to infinity
  sx, sy = src[..., 0] / w, src[..., 1] / w
  height, width = image.shape[:2]
  sx, sy = np.clip(sx, 0.0, width - 1.0), np.clip(sy, 0.0, height - 1.0)
  x0 = np.minimum(np.floor(sx).astype(np.int64), width - 2 if width > 1 else 0)
  y0 = np.minimum(np.floor(sy).astype(np.int64), height - 2 if height > 1 else 0)
  x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
  fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
  img = image.astype(np.float64)
  top = img[y0, x0] * (1.0 - fx) + img[y0, x1] * fx
  low = img[y1, x0] * (1.0 - fx) + img[y1, x1] * fx
  return top * (1.0 - fy) + low * fy


def inplane_normalize(image, keypoints, valid=None, box_factor: int = 1,
                      crop_size: int | None = None,
                      layout: layouts.KeypointLayout = layouts.H36M_17) -> np.ndarray:
  """The 10 part crops of `image`, concatenated on the channel axis.

  Args:
    image: (H, W, C) uint8 or float image (a photo or a stickman).
    keypoints: (J, 2) joint positions in `image`'s pixels, J = layout.num_joints.
    valid: optional (J,) bool mask of present joints (default: coordinates >= 0).
    box_factor: crop side = H // 2**box_factor (upstream: 1 for 128 px Market, 2 for 256 px).
    crop_size: explicit crop side in pixels, overriding box_factor.
    layout: the joints' layout (imaging/layouts.py); the 17 H3.6M joints by default.

  Returns:
    (crop, crop, 10·C) array of image's dtype (uint8 is rounded), parts in PARTS order.
  """
  image = keypoints_lib.check_image(image)
  if crop_size is None:
    if not isinstance(box_factor, int) or box_factor < 0:
      raise ValueError(f'box_factor={box_factor!r} must be an int >= 0.')
    crop_size = image.shape[0] // 2 ** box_factor
  if not isinstance(crop_size, int) or crop_size < 2:
    raise ValueError(f'crop side {crop_size!r} must be an int >= 2 (lower box_factor or pass '
                     'crop_size).')
  quads = part_quads(keypoints, image.shape[0], valid, layout)
  out = np.concatenate([warp_quad(image, q, crop_size) for q in quads], axis=-1)
  if image.dtype == np.uint8:
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
  return out.astype(image.dtype)
