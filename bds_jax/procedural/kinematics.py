"""Joint-angle parameterisation of the 17-joint skeleton and its forward kinematics.

Body frame: x forward, y to the person's left, z up (right-handed), pelvis at the origin.
At zero angles the person stands upright with legs and arms hanging straight down.

Every non-root joint j has a local rotation A_j (the rotation of the bone parent→j relative to
the parent's frame), its frame is F_j = F_parent @ A_j and its position is
pos_parent + F_j @ offset_j, so bone lengths are exactly preserved. Hip and shoulder use a
swing rotation (a rotation vector in the horizontal plane built from flexion and abduction,
free of gimbal singularities at rest) followed by an axial twist. Right-side angles are
mirrored so that the same value means the same anatomical motion on both sides.

Angles (degrees in tables, radians in arrays); positive means:
  *_flex: forward (hip, shoulder, spine, neck, elbow) or backward for the knee (flexion);
  *_abd: sideways away from the body; *_side: trunk bends to the person's left;
  *_twist / root_yaw: turn to the left (counter-clockwise seen from above);
  *_shoulder_rot: external rotation of the upper arm.
"""

import numpy as np

from bds_jax import skeleton

DOF_RANGES_DEG = {
    'root_yaw': (-20.0, 20.0),
    'lumbar_flex': (-20.0, 70.0),
    'lumbar_side': (-35.0, 35.0),
    'lumbar_twist': (-30.0, 30.0),
    'thoracic_flex': (-15.0, 50.0),
    'thoracic_side': (-25.0, 25.0),
    'thoracic_twist': (-40.0, 40.0),
    'neck_flex': (-40.0, 50.0),
    'head_flex': (-30.0, 30.0),
}
for _side in ('l', 'r'):
  DOF_RANGES_DEG.update({
      f'{_side}_hip_flex': (-35.0, 130.0),
      f'{_side}_hip_abd': (-20.0, 50.0),
      f'{_side}_knee': (0.0, 150.0),
      f'{_side}_shoulder_flex': (-50.0, 180.0),
      f'{_side}_shoulder_abd': (-40.0, 180.0),
      f'{_side}_shoulder_rot': (-60.0, 100.0),
      f'{_side}_elbow': (0.0, 150.0),
  })
del _side

DOF_NAMES = tuple(DOF_RANGES_DEG)


def _rot(axis: int, angle: np.ndarray) -> np.ndarray:
  """Rotations by `angle` (T,) radians about a coordinate axis, shape (T, 3, 3)."""
  angle = np.asarray(angle, np.float64)
  c, s = np.cos(angle), np.sin(angle)
  i, j = [(1, 2), (2, 0), (0, 1)][axis]
  out = np.zeros(angle.shape + (3, 3))
  out[..., axis, axis] = 1.0
  out[..., i, i] = c
  out[..., j, j] = c
  out[..., i, j] = -s
  out[..., j, i] = s
  return out


def rot_x(a):
  """Rotations about +x (forward): positive tilts +y (left) up."""
  return _rot(0, a)


def rot_y(a):
  """Rotations about +y (left): positive tilts +z (up) forward."""
  return _rot(1, a)


def rot_z(a):
  """Rotations about +z (up): positive turns left, counter-clockwise seen from above."""
  return _rot(2, a)


def axis_angle(rotvec: np.ndarray) -> np.ndarray:
  """Rodrigues' formula: rotation vectors (T, 3) to matrices (T, 3, 3)."""
  angle = np.linalg.norm(rotvec, axis=-1)
  safe = np.where(angle > 1e-12, angle, 1.0)
  k = rotvec / safe[..., None]
  kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
  zero = np.zeros_like(kx)
  cross = np.stack([np.stack([zero, -kz, ky], -1),
                    np.stack([kz, zero, -kx], -1),
                    np.stack([-ky, kx, zero], -1)], -2)
  s = np.sin(angle)[..., None, None]
  c = (1.0 - np.cos(angle))[..., None, None]
  return np.eye(3) + s * cross + c * (cross @ cross)


def _limb(flex, abd, twist, mirror: bool) -> np.ndarray:
  """Swing (flexion + abduction of a downward bone) then axial twist; mirrored for the right."""
  sign = -1.0 if mirror else 1.0
  # Forward flexion of a downward bone is a rotation about -y, abduction one about ±x.
  rotvec = np.stack([sign * abd, -flex, np.zeros_like(flex)], axis=-1)
  return axis_angle(rotvec) @ rot_z(sign * twist)


def _trunk(flex, side, twist) -> np.ndarray:
  """Forward flexion, side bend to the left and twist to the left of a spine segment."""
  return rot_y(flex) @ rot_x(-side) @ rot_z(twist)


def clamp(dofs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Clips every angle (radians) to its anatomical range."""
  return {name: np.clip(dofs[name], np.radians(lo), np.radians(hi))
          for name, (lo, hi) in DOF_RANGES_DEG.items()}


def bone_offsets(lengths: dict[str, float]) -> np.ndarray:
  """Offsets (17, 3) of each joint from its parent in the parent bone's rest frame."""
  neck_tilt, head_tilt = np.radians(15.0), np.radians(-5.0)  # nose ahead of the thorax
  off = np.zeros((skeleton.NUM_JOINTS, 3))
  for hip, knee, foot, y in ((1, 2, 3, -1.0), (4, 5, 6, 1.0)):
    off[hip] = (0.0, y * lengths['hip_width'], 0.0)
    off[knee] = (0.0, 0.0, -lengths['thigh'])
    off[foot] = (0.0, 0.0, -lengths['shin'])
  off[7] = (0.0, 0.0, lengths['lower_spine'])
  off[8] = (0.0, 0.0, lengths['upper_spine'])
  off[9] = lengths['neck'] * np.array([np.sin(neck_tilt), 0.0, np.cos(neck_tilt)])
  off[10] = lengths['head'] * np.array([np.sin(head_tilt), 0.0, np.cos(head_tilt)])
  for shoulder, elbow, wrist, y in ((11, 12, 13, 1.0), (14, 15, 16, -1.0)):
    off[shoulder] = (0.0, y * lengths['shoulder_width'], 0.0)
    off[elbow] = (0.0, 0.0, -lengths['upper_arm'])
    off[wrist] = (0.0, 0.0, -lengths['forearm'])
  return off


def local_rotations(dofs: dict[str, np.ndarray], heading: float) -> list:
  """Per-joint local rotations A_j, each (T, 3, 3) or None for a rigid bone."""
  d = dofs
  rots = [None] * skeleton.NUM_JOINTS
  rots[0] = rot_z(heading + d['root_yaw'])
  for side, knee, foot, mirror in (('r', 2, 3, True), ('l', 5, 6, False)):
    rots[knee] = _limb(d[f'{side}_hip_flex'], d[f'{side}_hip_abd'],
                       np.zeros_like(d[f'{side}_hip_flex']), mirror)
    rots[foot] = rot_y(d[f'{side}_knee'])
  rots[7] = _trunk(d['lumbar_flex'], d['lumbar_side'], d['lumbar_twist'])
  rots[8] = _trunk(d['thoracic_flex'], d['thoracic_side'], d['thoracic_twist'])
  rots[9] = rot_y(d['neck_flex'])
  rots[10] = rot_y(d['head_flex'])
  for side, elbow, wrist, mirror in (('l', 12, 13, False), ('r', 15, 16, True)):
    rots[elbow] = _limb(d[f'{side}_shoulder_flex'], d[f'{side}_shoulder_abd'],
                        d[f'{side}_shoulder_rot'], mirror)
    rots[wrist] = rot_y(-d[f'{side}_elbow'])
  return rots


def forward_kinematics(dofs: dict[str, np.ndarray], offsets: np.ndarray,
                       heading: float = 0.0) -> np.ndarray:
  """Joint positions (T, 17, 3) with the pelvis at the origin, body turned by `heading`.

  Args:
    dofs: every name in DOF_NAMES mapped to a (T,) array of angles in radians.
    offsets: (17, 3) bone offsets from `bone_offsets`.
    heading: rotation of the whole body about +z (radians); 0 faces +x.
  """
  rots = local_rotations(dofs, heading)
  num_frames = rots[0].shape[0]
  frames = [None] * skeleton.NUM_JOINTS
  pos = np.zeros((num_frames, skeleton.NUM_JOINTS, 3))
  frames[0] = rots[0]
  for j in range(1, skeleton.NUM_JOINTS):
    parent = skeleton.PARENTS[j]
    frames[j] = frames[parent] if rots[j] is None else frames[parent] @ rots[j]
    pos[:, j] = pos[:, parent] + frames[j] @ offsets[j]
  return pos
