"""In-plane normalisation: 10 perspective-warped body-part crops stacked on the channel axis.

Reference spec §1.8 (`inplane_normalize`, used for DeepFashion and Market). Each part is a
quadrilateral in the image, warped onto a square crop of side S / 2^box_factor with bilinear
sampling and replicated borders; a part that cannot be located gives an all-zero crop. Crops
are concatenated in part order, so an RGB image gives 30 channels.

Two geometries (`geometry`, the config's data.crop_geometry):

'ours' (the default; what this project trains with). Parts in PARTS order, the same for every
layout; every quad's corners land on the centres of the crop's corner pixels (0 ... S-1):
  * torso: the quad (r_hip, r_shoulder, l_shoulder, l_hip) onto the crop corners (0,0),
    (1,0), (1,1), (0,1); for a frontal person this lays the torso on its side (hips in the
    left column, shoulders in the right one). Any torso joint missing: zeros.
  * head: neck = the shoulder midpoint, top = the head-top joint (17-joint layout) or neck +
    2·(nose - neck) (18-joint layouts, upstream's rule). A rectangle along top -> neck with
    half-width |top - neck| / 2, top on row 0, image left on crop left. With the head missing,
    a box of side |shoulder line| straight above the shoulder midpoint; with a shoulder
    missing, zeros.
  * 8 limbs (upper arm, forearm right then left, thigh, shin right then left): a rectangle
    along joint_i -> joint_j with half-width |j - i| / 4, joint_i on row 0, not mirrored.
    With one joint missing the segment runs between the valid joint and the image's bottom
    row; both missing: zeros.
  These are NOT upstream's crops: they are upstream's parts laid out one consistent way.

'upstream' (for the authors' weights; lib/utils.py t4p, t3p, t2p, exact up to OpenCV's
1/32-pixel fixed-point bilinear weights): the parts in upstream's per-dataset order
(`layout.upstream_parts`: Market's torso corners and limbs differ from ours; upstream never
cut Human3.6M crops, so the 17-joint layout keeps our parts), and
  * torso: the quad onto (0,0), (S,0), (S,S), (0,S) (corners at 0 ... S, not S-1);
  * head: top - n/2, neck - n/2, neck + n/2, top + n/2 (n = (top -> neck) turned by +90°) onto
    (0,0), (0,S), (S,S), (S,0): our head crop mirrored left-right. Without the head joint:
    l_shoulder, r_shoulder, r_shoulder + m, l_shoulder + m onto the same corners, m = the
    shoulder line turned by 90° to point up the image;
  * limbs: joint_i + n/4, joint_i - n/4, joint_j - n/4, joint_j + n/4 (n = (i -> j) turned
    by +90°) onto (-1,-1), (-1,S-1), (S-1,S-1), (S-1,-1): joint_i -> joint_j runs left to
    right (our limb crops transposed) and the corners sit at -1 ... S-1. A joint is missing
    when both coordinates are <= 0 (and present when both are > 0); with one missing the
    segment runs from the present one straight down to the image's last row. (S: the crop
    side.)
  One deviation: upstream warps a torso with a missing joint through its placeholder
  coordinates; we give zeros (upstream's DeepFashion and Market loaders drop such frames).
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
# Upstream's destination corners for its head and limb quads (x, y), before scaling.
_UPSTREAM_DST = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
GEOMETRIES = ('ours', 'upstream')
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


def upstream_part_warps(keypoints, image_height: int, crop_size: int, valid=None,
                        layout: layouts.KeypointLayout = layouts.H36M_17) -> list:
  """(source quad, destination corners in crop pixels) of upstream's 10 parts, or None each.

  The 'upstream' geometry of the module docstring; parts in `layout.upstream_parts` order.
  """
  raw = np.asarray(keypoints, np.float64)
  points, mask = keypoints_lib.keypoints_and_mask(keypoints, valid,
                                                  num_joints=layout.num_joints)
  if valid is None:  # upstream's limb test: missing when both <= 0, present when both > 0
    points, absent, present = raw, np.all(raw <= 0, axis=-1), np.all(raw > 0, axis=-1)
  else:
    absent, present = ~mask, mask
  s = float(crop_size)
  torso, limbs = layout.upstream_parts
  out = [(points[list(torso)], _UNIT_SQUARE * s) if mask[list(torso)].all() else None]

  rs, ls, top_joint = layout.r_shoulder, layout.l_shoulder, layout.head_top
  head = None
  if mask[[rs, ls, top_joint]].all():
    neck = 0.5 * (points[rs] + points[ls])
    top = points[top_joint]
    if layout.head_mode == 'nose':
      top = neck + 2.0 * (top - neck)
    seg = neck - top
    n = 0.5 * np.array([-seg[1], seg[0]])
    head = np.array([top - n, neck - n, neck + n, top + n])
  elif mask[[rs, ls]].all():  # a square on the shoulder line, on the side up the image
    seg = points[rs] - points[ls]
    n = np.array([-seg[1], seg[0]])
    n = -n if n[1] > 0 else n
    head = np.array([points[ls], points[rs], points[rs] + n, points[ls] + n])
  out.append(None if head is None else (head, _UPSTREAM_DST * s))

  for i, j in limbs:
    if absent[i] or absent[j]:
      if not (present[i] or present[j]):
        out.append(None)
        continue
      a = points[i] if present[i] else points[j]
      b = np.array([a[0], image_height - 1.0])
    else:
      a, b = points[i], points[j]
    seg = b - a
    n = 0.25 * np.array([-seg[1], seg[0]])
    out.append((np.array([a + n, a - n, b - n, b + n]), _UPSTREAM_DST * s - 1.0))
  return out


def part_warps(keypoints, image_height: int, crop_size: int, valid=None,
               layout: layouts.KeypointLayout = layouts.H36M_17, geometry: str = 'ours') -> list:
  """(source quad, destination corners in crop pixels) of each part, or None for a missing
  part, in `geometry` (module docstring): what `inplane_normalize` warps and
  bds_jax/imaging/part_map.py inverts. 'ours': PARTS order; 'upstream': the layout's."""
  if geometry not in GEOMETRIES:
    raise ValueError(f'crop geometry {geometry!r} (data.crop_geometry) must be one of '
                     f'{GEOMETRIES}.')
  if geometry == 'upstream':
    return upstream_part_warps(keypoints, image_height, crop_size, valid, layout)
  corners = _UNIT_SQUARE * (crop_size - 1)
  return [None if q is None else (q, corners)
          for q in part_quads(keypoints, image_height, valid, layout)]


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


def warp_quad(image, quad, crop_size: int, dst=None) -> np.ndarray:
  """Warps the image region inside `quad` onto a crop_size² square (float64).

  Quad corner k lands on crop point dst[k] (x, y in pixels; default: the centres of the corner
  pixels (0,0), (1,0), (1,1), (0,1) scaled by crop_size - 1), and crop pixel (x, y) samples
  the image where the homography takes it, as OpenCV's warpPerspective does. Sampling is
  bilinear; outside the image the border pixel is repeated (BORDER_REPLICATE). Returns zeros
  when the quad is degenerate (three corners collinear) or folded (not convex), which
  upstream's warp would turn into smears.
  """
  image = np.asarray(image)
  crop = np.zeros((crop_size, crop_size, image.shape[-1]))
  if quad is None:
    return crop
  to_src = homography(_UNIT_SQUARE * (crop_size - 1) if dst is None else dst, quad)
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
                      layout: layouts.KeypointLayout = layouts.H36M_17,
                      geometry: str = 'ours') -> np.ndarray:
  """The 10 part crops of `image`, concatenated on the channel axis.

  Args:
    image: (H, W, C) uint8 or float image (a photo or a stickman).
    keypoints: (J, 2) joint positions in `image`'s pixels, J = layout.num_joints.
    valid: optional (J,) bool mask of present joints (default: coordinates >= 0).
    box_factor: crop side = H // 2**box_factor (upstream: 1 for 128 px Market, 2 for 256 px).
    crop_size: explicit crop side in pixels, overriding box_factor.
    layout: the joints' layout (imaging/layouts.py); the 17 H3.6M joints by default.
    geometry: 'ours' or 'upstream' (module docstring; data.crop_geometry).

  Returns:
    (crop, crop, 10·C) array of image's dtype (uint8 is rounded), parts in PARTS order
    ('upstream': in the layout's upstream order).
  """
  image = keypoints_lib.check_image(image)
  if crop_size is None:
    if not isinstance(box_factor, int) or box_factor < 0:
      raise ValueError(f'box_factor={box_factor!r} must be an int >= 0.')
    crop_size = image.shape[0] // 2 ** box_factor
  if not isinstance(crop_size, int) or crop_size < 2:
    raise ValueError(f'crop side {crop_size!r} must be an int >= 2 (lower box_factor or pass '
                     'crop_size).')
  warps = part_warps(keypoints, image.shape[0], crop_size, valid, layout, geometry)
  out = np.concatenate([warp_quad(image, w[0], crop_size, w[1]) if w
                        else warp_quad(image, None, crop_size) for w in warps], axis=-1)
  if image.dtype == np.uint8:
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
  return out.astype(image.dtype)
