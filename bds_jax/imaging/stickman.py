"""Stickman images of 2D keypoints: the posture input of the appearance model.

Follows upstream's `make_joint_img` (reference spec §1.8). The parts come from a keypoint
layout (imaging/layouts.py): by default the 17-joint world model of §1.2 in our joint order
(bds_jax/skeleton.py; upstream's pelvis stand-in is not drawn); DeepFashion's and Market's
18-joint layouts add face lines and a neck -> nose line. Each channel is drawn on its own, so
colours mix where parts overlap:
  * torso polygon (r_hip, r_shoulder, thorax, l_shoulder, l_hip), filled: channel 1 = 127,
    channel 2 = 255, drawn only when more than 2 of its points are valid;
  * right-side lines (legs, hip-shoulder, arm): channel 1 = 255 (green);
  * left-side lines: channel 0 = 255 (red);
  * head lines (thorax-neck, neck-head): channels 0 and 1 = 127; a layout without head lines
    draws the neck (shoulder midpoint) -> `headup` line instead;
  * face lines (18-joint layouts): channels 0 and 1 = 127, only when shorter than the longest
    head line (or the neck line), as upstream (this drops face lines of badly detected faces).
A line is drawn when both its joints are valid. Upstream draws 1-px lines (`line_width=1`,
the default); the original VUnet used 3·S/128 px.
"""

import numpy as np

from bds_jax import skeleton
from bds_jax.imaging import keypoints as keypoints_lib
from bds_jax.imaging import layouts
from bds_jax.imaging import raster

R_HIP, R_KNEE, R_FOOT, L_HIP, L_KNEE, L_FOOT = 1, 2, 3, 4, 5, 6
THORAX, NECK, HEAD = 8, 9, 10
L_SHOULDER, L_ELBOW, L_WRIST, R_SHOULDER, R_ELBOW, R_WRIST = 11, 12, 13, 14, 15, 16

TORSO_POLYGON = (R_HIP, R_SHOULDER, THORAX, L_SHOULDER, L_HIP)
RIGHT_LINES = ((R_HIP, R_KNEE), (R_KNEE, R_FOOT), (R_HIP, R_SHOULDER),
               (R_SHOULDER, R_ELBOW), (R_ELBOW, R_WRIST))
LEFT_LINES = ((L_HIP, L_KNEE), (L_KNEE, L_FOOT), (L_HIP, L_SHOULDER),
              (L_SHOULDER, L_ELBOW), (L_ELBOW, L_WRIST))
HEAD_LINES = ((THORAX, NECK), (NECK, HEAD))

# (channel, value) pairs each part writes.
TORSO_FILL = ((1, 127), (2, 255))
RIGHT_FILL = ((1, 255),)
LEFT_FILL = ((0, 255),)
HEAD_FILL = ((0, 127), (1, 127))

# Upstream's sides must agree with the skeleton's: every right line ends in right joints.
assert all(set(l) <= set(skeleton.RIGHT_JOINTS) for l in RIGHT_LINES)
assert all(set(l) <= set(skeleton.LEFT_JOINTS) for l in LEFT_LINES)
# The default layout is these parts (one definition for the 17 joints).
assert (layouts.H36M_17.torso_polygon, layouts.H36M_17.right_lines, layouts.H36M_17.left_lines,
        layouts.H36M_17.head_lines) == (TORSO_POLYGON, RIGHT_LINES, LEFT_LINES, HEAD_LINES)


def _paint(image, rows, cols, mask, fills):
  for channel, value in fills:
    image[rows, cols, channel][mask] = value


def draw_stickman(keypoints, size=128, valid=None, line_width: float = 1.0,
                  dtype=np.uint8, layout: layouts.KeypointLayout = layouts.H36M_17) -> np.ndarray:
  """Draws the stickman of one pose.

  Args:
    keypoints: (J, 2) joint positions in pixels (x right, y down; pixel centres at integers),
      J = layout.num_joints.
    size: image size, an int (square) or (height, width).
    valid: optional (J,) bool mask of the joints present; by default a joint is present when
      both its coordinates are >= 0 (upstream's convention).
    line_width: limb line width in pixels (> 0).
    dtype: np.uint8 (values 0-255, as upstream) or a float dtype (values in [0, 1]).
    layout: the joints' layout (imaging/layouts.py); the 17 H3.6M joints by default.

  Returns:
    (height, width, 3) image, black background.
  """
  height, width = keypoints_lib.image_size(size)
  points, mask = keypoints_lib.keypoints_and_mask(keypoints, valid,
                                                  num_joints=layout.num_joints)
  if not (np.isfinite(line_width) and line_width > 0):
    raise ValueError(f'line_width={line_width!r} must be a positive number of pixels.')
  dtype = np.dtype(dtype)
  if dtype != np.uint8 and not np.issubdtype(dtype, np.floating):
    raise ValueError(f'dtype={dtype}: expected uint8 or a floating dtype.')
  image = np.zeros((height, width, 3), np.uint8)
  line = lambda a, b, fills: _paint(
      image, *raster.segment_mask(a, b, line_width, height, width), fills)
  torso = [points[j] for j in layout.torso_polygon if mask[j]]
  if len(torso) > 2:
    _paint(image, *raster.polygon_mask(np.array(torso), height, width), TORSO_FILL)
  for lines, fills in ((layout.right_lines, RIGHT_FILL), (layout.left_lines, LEFT_FILL)):
    for i, j in lines:
      if mask[i] and mask[j]:
        line(points[i], points[j], fills)
  throat = 0.0  # the longest head line: face lines must be shorter
  if layout.head_lines:
    for i, j in layout.head_lines:
      if mask[i] and mask[j]:
        line(points[i], points[j], HEAD_FILL)
        throat = max(throat, float(np.hypot(*(points[i] - points[j]))))
  elif mask[layout.r_shoulder] and mask[layout.l_shoulder] and mask[layout.headup]:
    neck = 0.5 * (points[layout.r_shoulder] + points[layout.l_shoulder])
    line(neck, points[layout.headup], HEAD_FILL)
    throat = float(np.hypot(*(neck - points[layout.headup])))
  for i, j in layout.face_lines:
    if mask[i] and mask[j] and np.hypot(*(points[i] - points[j])) < throat:
      line(points[i], points[j], HEAD_FILL)
  if dtype == np.uint8:
    return image
  return (image / 255.0).astype(dtype)


def body_mask(keypoints, size=128, valid=None, width_factor: float = 0.3,
              layout: layouts.KeypointLayout = layouts.H36M_17) -> np.ndarray:
  """A rough silhouette of one pose from its 2D keypoints alone (so on any dataset): the
  stickman drawn with limbs `width_factor` times the torso's size wide (its longest
  shoulder-hip diagonal; 2 px at least), as a float32 (H, W) mask of 0 and 1. It is a weight
  for the person's pixels, not a segmentation: it covers most of the body and a margin.
  """
  height, width = keypoints_lib.image_size(size)
  points, mask = keypoints_lib.keypoints_and_mask(keypoints, valid,
                                                  num_joints=layout.num_joints)
  torso = points[[j for j in layout.torso_polygon if mask[j]]]
  scale = (max(float(np.hypot(*(p - q))) for p in torso for q in torso) if len(torso) > 1
           else 0.1 * max(height, width))  # no torso: a tenth of the image
  line_width = max(2.0, width_factor * scale)
  image = draw_stickman(keypoints, (height, width), valid, line_width=line_width, layout=layout)
  return (image.max(axis=-1) > 0).astype(np.float32)
