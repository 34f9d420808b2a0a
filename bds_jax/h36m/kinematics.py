"""Forward kinematics of the Human3.6M exponential-map release (32 joints).

The exp-map text release (h36m-formats-and-upstream-checkpoints.md §2c) stores one frame per line
as 99 floats: the root position (channels 0-2, mm) and then 32 axis-angle rotations (joint 0 first,
channels 3-5 for the root). Positions follow from the fixed skeleton below with the convention
the release was made with (row vectors):

  R_j^world = R(e_j) @ R_p^world,    x_j = offset_j @ R_p^world + x_p    for joint j, parent p,
  R_0^world = R(e_0),                x_0 = offset_0 (+ root position, see `root`),

with R(e) the Rodrigues rotation of the axis-angle e, and finally the proper rotation
(x, y, z) -> (x, -z, y) (+90 degrees about x, `Y_UP_TO_Z_UP`) to get z-up coordinates.

The release frame is y up with the skeleton's right hip at -x and its toes at +z, i.e. right x
forward = up, like a real person in a right-handed frame (and like the CDF/npz positions and the
synthetic data). The common conversion (and h36m-formats-and-upstream-checkpoints.md §2c) swaps
the y and z columns instead; that is a reflection (determinant -1) and yields mirror images whose
left side is labelled right. With the rotation the canonical (root='zero') pose faces -y.

How the result relates to the position formats (a) CDF and (b) npz:
- The standard exp-map 3D conversion, our default (`root='zero'`), zeroes the root rotation and
  position, so every frame is root-centred with a canonical heading: poses_c = world pose
  expressed in the root's own frame. It therefore differs from (a)/(b) by a rigid transform (the
  root's rotation and translation). That transform is one per sequence only while the root's
  rotation stays fixed; for real motion the root turns and travels, so it changes per frame, and
  the global trajectory that the behaviour model normally sees (reference spec §1.3) is gone.
- `root='keep'` applies the stored root rotation and position instead.
- The release uses this one skeleton for every subject, whereas (a)/(b) carry each subject's own
  bone lengths; on real data (c) thus also differs in bone lengths.
"""

import numpy as np

from bds_jax import skeleton

NUM_JOINTS_32 = 32
# Channels per frame: root position (3) then one axis-angle per joint (32 x 3).
NUM_EXPMAP_CHANNELS = 3 + 3 * NUM_JOINTS_32
ROOT_MODES = ('zero', 'keep')

# Bone offset of each of the 32 joints from its parent, in mm, in the release's y-up frame
# (h36m-formats-and-upstream-checkpoints.md §1). Several joints have zero offset: the skeleton
# repeats end sites and wrist/thumb joints on top of their parents. Joint 11 ("spine") sits 0.1 mm
# above the root, which is why upstream could use it in place of joint 0.
OFFSETS_32_MM = np.array([
    [0.000000, 0.000000, 0.000000],
    [-132.948591, 0.000000, 0.000000],
    [0.000000, -442.894612, 0.000000],
    [0.000000, -454.206447, 0.000000],
    [0.000000, 0.000000, 162.767078],
    [0.000000, 0.000000, 74.999437],
    [132.948826, 0.000000, 0.000000],
    [0.000000, -442.894413, 0.000000],
    [0.000000, -454.206590, 0.000000],
    [0.000000, 0.000000, 162.767426],
    [0.000000, 0.000000, 74.999948],
    [0.000000, 0.100000, 0.000000],
    [0.000000, 233.383263, 0.000000],
    [0.000000, 257.077681, 0.000000],
    [0.000000, 121.134938, 0.000000],
    [0.000000, 115.002227, 0.000000],
    [0.000000, 257.077681, 0.000000],
    [0.000000, 151.034226, 0.000000],
    [0.000000, 278.882773, 0.000000],
    [0.000000, 251.733451, 0.000000],
    [0.000000, 0.000000, 0.000000],
    [0.000000, 0.000000, 99.999627],
    [0.000000, 100.000188, 0.000000],
    [0.000000, 0.000000, 0.000000],
    [0.000000, 257.077681, 0.000000],
    [0.000000, 151.031437, 0.000000],
    [0.000000, 278.892924, 0.000000],
    [0.000000, 251.728680, 0.000000],
    [0.000000, 0.000000, 0.000000],
    [0.000000, 0.000000, 99.999888],
    [0.000000, 137.499922, 0.000000],
    [0.000000, 0.000000, 0.000000],
], dtype=np.float64)

# Row-vector map from the release's y-up frame to z up: p_zup = p_yup @ Y_UP_TO_Z_UP, i.e.
# (x, y, z) -> (x, -z, y). A rotation (det +1), so left and right stay where they are.
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

PARENTS_32 = skeleton.PARENTS_32
# The FK loop below relies on every parent coming before its children.
assert all(p < j for j, p in enumerate(PARENTS_32))


def rodrigues(axis_angle: np.ndarray) -> np.ndarray:
  """Rotation matrices of axis-angle vectors: R = I + sin(t) K + (1 - cos(t)) K^2.

  Args:
    axis_angle: [..., 3] rotation axis scaled by the angle t in radians.

  Returns:
    [..., 3, 3] rotation matrices, K being the cross-product matrix of the unit axis.
  """
  e = np.asarray(axis_angle, dtype=np.float64)
  theta2 = np.sum(e * e, axis=-1)[..., None, None]
  theta = np.sqrt(theta2)
  # K below is built from the unnormalised e, so its coefficients are sin(t)/t and
  # (1 - cos(t))/t^2; their Taylor series keep near-zero rotations exact instead of 0/0.
  small = theta < 1e-6
  safe = np.where(small, 1.0, theta)
  a = np.where(small, 1.0 - theta2 / 6.0, np.sin(safe) / safe)
  b = np.where(small, 0.5 - theta2 / 24.0, (1.0 - np.cos(safe)) / (safe * safe))
  x, y, z = e[..., 0], e[..., 1], e[..., 2]
  zero = np.zeros_like(x)
  k = np.stack([
      np.stack([zero, -z, y], axis=-1),
      np.stack([z, zero, -x], axis=-1),
      np.stack([-y, x, zero], axis=-1),
  ], axis=-2)
  eye = np.broadcast_to(np.eye(3), k.shape)
  return eye + a * k + b * (k @ k)


def expmap_to_positions(channels: np.ndarray, root: str = 'zero') -> np.ndarray:
  """32 joint positions in metres (z up) from exp-map frames.

  Args:
    channels: [N, 99] frames of the exp-map release (root position in mm, then 32 axis-angles).
    root: 'zero' (default, the standard conversion) ignores channels 0-5, giving root-centred poses
      with a canonical heading; 'keep' applies the root rotation and adds the root position.

  Returns:
    [N, 32, 3] float64 joint positions in metres, z up: (x, -z, y) of the release's y-up frame.
  """
  channels = np.asarray(channels, dtype=np.float64)
  if channels.ndim != 2 or channels.shape[1] != NUM_EXPMAP_CHANNELS:
    raise ValueError(
        f'expected exp-map frames of shape [N, {NUM_EXPMAP_CHANNELS}], got {channels.shape}')
  if root not in ROOT_MODES:
    raise ValueError(f'root must be one of {ROOT_MODES}, got {root!r}')
  n = channels.shape[0]
  rotations = rodrigues(channels[:, 3:].reshape(n, NUM_JOINTS_32, 3))  # [N, 32, 3, 3]
  if root == 'zero':
    rotations[:, 0] = np.eye(3)
    root_position = np.zeros((n, 3))
  else:
    root_position = channels[:, :3]

  world_rot = np.empty_like(rotations)
  xyz = np.empty((n, NUM_JOINTS_32, 3))
  world_rot[:, 0] = rotations[:, 0]
  xyz[:, 0] = OFFSETS_32_MM[0] + root_position
  for j in range(1, NUM_JOINTS_32):
    p = PARENTS_32[j]
    xyz[:, j] = OFFSETS_32_MM[j] @ world_rot[:, p] + xyz[:, p]
    world_rot[:, j] = rotations[:, j] @ world_rot[:, p]
  # A rotation, not the usual y/z swap, which would mirror the skeleton (see module docstring).
  return xyz @ Y_UP_TO_Z_UP / 1000.0
