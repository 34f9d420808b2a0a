"""The 17-joint Human3.6M skeleton shared by every dataset, model and figure.

All pose arrays in bds_jax are (..., 17, 3) in metres, z up, at 50 Hz, in the joint order
below (the common VideoPose3D / DLow / BeLFusion subset of the 32-joint H3.6M skeleton).
Flattened poses are joint-major: (j0x, j0y, j0z, j1x, ...), i.e. 51 dims.

Upstream (reference spec §1.2) used a different order and joint 11 instead of 0 (0.1 mm apart);
`UPSTREAM_TO_OURS` reorders an upstream 17-joint array into ours.
"""

import numpy as np

FPS = 50
NUM_JOINTS = 17
POSE_DIM = NUM_JOINTS * 3

JOINT_NAMES = (
    'pelvis', 'r_hip', 'r_knee', 'r_foot', 'l_hip', 'l_knee', 'l_foot', 'spine', 'thorax',
    'neck', 'head', 'l_shoulder', 'l_elbow', 'l_wrist', 'r_shoulder', 'r_elbow', 'r_wrist')

# Parent of each joint (-1 for the root).
PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)

LEFT_JOINTS = (4, 5, 6, 11, 12, 13)
RIGHT_JOINTS = (1, 2, 3, 14, 15, 16)

# Colours of each side in every figure (bds_jax.viz) and the HTML report's legend. (The
# appearance model's stickmen are an input, drawn in upstream's channel colours instead.)
SIDE_COLORS = {'left': '#1f77b4', 'right': '#d62728', 'center': '#333333'}

# Bones as (parent, child) pairs, for drawing.
BONES = tuple((p, c) for c, p in enumerate(PARENTS) if p >= 0)

# The 32-joint H3.6M skeleton: parent of each joint.
PARENTS_32 = (-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12, 16, 17, 18, 19, 20, 19,
              22, 12, 24, 25, 26, 27, 28, 27, 30)
# Indices into the 32-joint array that give our 17 joints, in our order.
H36M_32_TO_17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
# Upstream's 17-joint selection from the 32 joints, in upstream's order (reference spec §1.2).
UPSTREAM_32_TO_17 = (1, 2, 3, 6, 7, 8, 11, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
# ours[k] = upstream[UPSTREAM_TO_OURS[k]]; upstream's joint 11 stands in for our pelvis (joint 0).
UPSTREAM_TO_OURS = (6, 0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)


def bone_side(parent: int, child: int) -> str:
  """'left', 'right' or 'center', for colouring a bone."""
  del parent
  if child in LEFT_JOINTS:
    return 'left'
  if child in RIGHT_JOINTS:
    return 'right'
  return 'center'


def check_poses(poses: np.ndarray, what: str = 'poses') -> np.ndarray:
  """Returns poses as float32 (..., 17, 3), or raises a ValueError that names `what`."""
  poses = np.asarray(poses)
  if poses.ndim < 2 or poses.shape[-2:] != (NUM_JOINTS, 3):
    raise ValueError(
        f'{what}: expected an array of shape (..., {NUM_JOINTS}, 3) (17 H3.6M joints, xyz in '
        f'metres), got shape {poses.shape}.')
  if not np.all(np.isfinite(poses)):
    raise ValueError(f'{what}: contains NaN or inf values.')
  return poses.astype(np.float32, copy=False)
