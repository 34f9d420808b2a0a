"""BVH files written with bvhio from 17-joint poses, for the tests of the motion readers
(test_motion_files.py) and of the mocap_folder dataset (test_mocap_folder.py)."""

import warnings

import numpy as np
from scipy.spatial.transform import Rotation
from scipy.spatial.transform import Slerp

with warnings.catch_warnings():
  warnings.simplefilter('ignore', PendingDeprecationWarning)  # bvhio imports PyGLM by its old name
  import bvhio  # pylint: disable=g-import-not-at-top
  from pyglm import glm  # pylint: disable=g-import-not-at-top
  from SpatialTransform import Pose  # pylint: disable=g-import-not-at-top

from bds_jax import skeleton
from bds_jax.procedural import kinematics
from bds_jax.procedural import subjects

# BVH joints as (name, parent, our joint it sits at or None = on its parent, End Site joint).
CMU = (('Hips', None, 0, None),
       ('LHipJoint', 'Hips', None, None), ('LeftUpLeg', 'LHipJoint', 4, None),
       ('LeftLeg', 'LeftUpLeg', 5, None), ('LeftFoot', 'LeftLeg', 6, None),
       ('RHipJoint', 'Hips', None, None), ('RightUpLeg', 'RHipJoint', 1, None),
       ('RightLeg', 'RightUpLeg', 2, None), ('RightFoot', 'RightLeg', 3, None),
       ('LowerBack', 'Hips', None, None), ('Spine', 'LowerBack', 7, None),
       ('Spine1', 'Spine', 8, None), ('Neck', 'Spine1', None, None),
       ('Neck1', 'Neck', 9, None), ('Head', 'Neck1', None, 10),
       ('LeftShoulder', 'Spine1', None, None), ('LeftArm', 'LeftShoulder', 11, None),
       ('LeftForeArm', 'LeftArm', 12, None), ('LeftHand', 'LeftForeArm', 13, None),
       ('RightShoulder', 'Spine1', None, None), ('RightArm', 'RightShoulder', 14, None),
       ('RightForeArm', 'RightArm', 15, None), ('RightHand', 'RightForeArm', 16, None))
MIXAMO = tuple((f'mixamorig:{n}', p and f'mixamorig:{p}', j, e) for n, p, j, e in (
    ('Hips', None, 0, None),
    ('LeftUpLeg', 'Hips', 4, None), ('LeftLeg', 'LeftUpLeg', 5, None),
    ('LeftFoot', 'LeftLeg', 6, None), ('LeftToeBase', 'LeftFoot', None, None),
    ('RightUpLeg', 'Hips', 1, None), ('RightLeg', 'RightUpLeg', 2, None),
    ('RightFoot', 'RightLeg', 3, None),
    ('Spine', 'Hips', None, None), ('Spine1', 'Spine', 7, None), ('Spine2', 'Spine1', 8, None),
    ('Neck', 'Spine2', None, None), ('Head', 'Neck', 9, None), ('HeadTop_End', 'Head', 10, None),
    ('LeftShoulder', 'Spine2', None, None), ('LeftArm', 'LeftShoulder', 11, None),
    ('LeftForeArm', 'LeftArm', 12, None), ('LeftHand', 'LeftForeArm', 13, None),
    ('RightShoulder', 'Spine2', None, None), ('RightArm', 'RightShoulder', 14, None),
    ('RightForeArm', 'RightArm', 15, None), ('RightHand', 'RightForeArm', 16, None)))
TO_FILE_AXES = {'z': np.eye(3), 'y': np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])}  # z-up -> y-up


def rest_pose(subject: str) -> np.ndarray:
  """(17, 3) the synthetic subject's rest pose (all joint angles zero), metres, z up."""
  offsets = kinematics.bone_offsets(subjects.bone_lengths(subject))
  rest = np.zeros((17, 3))
  for j in range(1, 17):
    rest[j] = rest[skeleton.PARENTS[j]] + offsets[j]
  return rest


def _swing(a, b):
  """Rotations (T,) taking unit vectors a (3,) to b (T, 3) the shortest way."""
  a = a / np.linalg.norm(a)
  b = b / np.linalg.norm(b, axis=-1, keepdims=True)
  axis = np.cross(a, b)
  angle = np.arctan2(np.linalg.norm(axis, axis=-1), b @ a)
  unit = axis / np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-12)
  return Rotation.from_rotvec(unit * angle[:, None])


def write_bvh(path, poses, rest, spec, unit=1.0, up='z', fps=50.0, order='ZXY'):
  """Writes (T, 17, 3) z-up metre poses at 50 Hz as a BVH file with bvhio: each joint turns
  the shortest way to its child (every joint here has one child direction), the local
  rotations are slerped to `fps`, and the file is in `unit` metres with `up` up."""
  axes = TO_FILE_AXES[up]
  poses = np.einsum('ab,tjb->tja', axes, poses) / unit
  rest = rest @ axes.T / unit
  at = {}
  for name, parent, ours, _ in spec:
    at[name] = ((poses[:, ours], rest[ours]) if ours is not None else at[parent])
  world, local = {}, {}
  for name, parent, _, end in spec:
    kids = [(at[n][0], at[n][1]) for n, p, _, _ in spec if p == name]
    kids = [k for k in kids if np.linalg.norm(k[1] - at[name][1]) > 1e-9]
    if end is not None:
      kids.append((poses[:, end], rest[end]))
    if kids:
      world[name] = _swing(kids[0][1] - at[name][1], kids[0][0] - at[name][0])
    else:
      world[name] = world[parent] if parent else Rotation.identity(len(poses))
    local[name] = world[name] if parent is None else world[parent].inv() * world[name]
  times = np.arange(int((len(poses) - 1) / 50.0 * fps) + 1) / fps
  src = np.arange(len(poses)) / 50.0
  joints = {}
  for name, parent, ours, end in spec:
    offset = at[name][1] - (at[parent][1] if parent else 0.0)
    j = bvhio.BvhJoint(name, glm.vec3(*offset))
    rots = Slerp(src, local[name])(times).as_quat()  # x, y, z, w
    root = np.stack([np.interp(times, src, at[name][0][:, a]) for a in range(3)], -1)
    j.Channels = ([f'{a}position' for a in 'XYZ'] if parent is None else []) + [
        f'{a}rotation' for a in order]
    j.Keyframes = [Pose(glm.vec3(*root[k]) if parent is None else glm.vec3(*offset),
                        glm.quat(q[3], q[0], q[1], q[2])) for k, q in enumerate(rots)]
    j.EndSite = glm.vec3(*((rest[end] - at[name][1]) if end is not None else offset * 0.2 + 1))
    joints[name] = j
    if parent:
      joints[parent].Children.append(j)
  bvhio.writeBvh(str(path), bvhio.BvhContainer(joints[spec[0][0]], len(times), 1.0 / fps))
  return path
