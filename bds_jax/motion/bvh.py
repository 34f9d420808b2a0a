"""BVH files as the 17 joints of bds_jax.skeleton, in the file's units and axes.

bvhio (a maintained, pure-Python BVH library whose only dependencies are PyGLM and its
author's spatial-transform) parses the HIERARCHY. The MOTION block is parsed here and the
forward kinematics run vectorised in numpy, because bvhio builds Python objects per joint and
frame (seconds for a long capture) and its reader loops forever at a truncated file's end; the
header is checked for completeness before bvhio sees it. The conventions are bvhio's and the
BVH format's: a joint's rotation channels are intrinsic Euler angles in degrees in the order of
the channels, and position channels replace the joint's OFFSET.

Joints are found by name (case, separators, namespace prefixes such as `mixamorig:` and
`Bip01 ` ignored) for CMU-style (Hips, LHipJoint, LeftUpLeg, LowerBack, Spine1, ...),
Mixamo-style (mixamorig:Hips, mixamorig:LeftUpLeg, ..., HeadTop_End), 3ds Max Biped (Bip01
L Thigh, ...) and generic names (Hips/Pelvis, LeftHip, LeftKnee, LeftAnkle, LeftShoulder,
LeftElbow, LeftWrist, Neck, Head, ...). Our `spine` is the joint on the pelvis-to-thorax chain
nearest the reference's height ratio along it, and our `head` (the head top) is the Head's
`End Site` or a HeadTop joint; a JSON joint map overrides any of them.
"""

import dataclasses
import json
import re
import warnings

import numpy as np
from scipy.spatial.transform import Rotation

from bds_jax import errors
from bds_jax import skeleton
from bds_jax.motion import retarget

END = '_end'  # a leaf joint's End Site is the pseudo joint '<name>_end'
_SIDES = {'l': ('left', 'l'), 'r': ('right', 'r')}
# Per limb joint, the part names in order of preference: CMU's and Mixamo's LeftArm is the
# shoulder joint and their LeftShoulder the clavicle, so 'arm' comes before 'shoulder'.
_LIMB_PARTS = {
    'hip': ('upleg', 'thigh', 'upperleg', 'femur', 'hip'),
    'knee': ('leg', 'shin', 'lowerleg', 'calf', 'knee', 'tibia'),
    'foot': ('foot', 'ankle'),
    'shoulder': ('arm', 'upperarm', 'humerus', 'shoulder'),
    'elbow': ('forearm', 'lowerarm', 'elbow', 'radius'),
    'wrist': ('hand', 'wrist'),
}
_CENTRE = {
    'pelvis': ('hips', 'pelvis', 'hip', 'root'),
    'thorax': ('neck', 'neck01', 'thorax', 'neckbase'),
    'neck': ('head', 'nose'),  # our 'neck' is H3.6M's neck/nose joint, at the skull's base
    'head': ('headtopend', 'headtop', 'headend', 'headsite', 'headnub', 'head01end'),
}


def _candidates() -> dict[str, tuple[str, ...]]:
  out = dict(_CENTRE)
  for name in skeleton.JOINT_NAMES:
    side, _, part = name.partition('_')
    if side in _SIDES and part in _LIMB_PARTS:
      out[name] = tuple(f for p in _LIMB_PARTS[part] for s in _SIDES[side] for f in (s + p, p + s))
  return out


CANDIDATES = _candidates()


def normalize(name: str) -> str:
  """A joint name without namespace, case, separators or rig prefix ('mixamorig:LeftArm' and
  'Bip01 L UpperArm' -> 'leftarm', 'lupperarm')."""
  name = re.sub(r'[^a-z0-9]', '', name.split(':')[-1].lower())
  return re.sub(r'^(mixamorig\d*|bip0*1)', '', name)


@dataclasses.dataclass
class Bvh:
  """A BVH file's joints (file order, then End Sites) in the file's units and axes."""
  names: list[str]
  parents: list[int]
  positions: np.ndarray  # (T, J, 3) world positions per frame
  rest: np.ndarray       # (J, 3) the rest pose (every rotation zero)
  fps: float


def _fail(path: str, what: str):
  raise errors.InputError(f'{path}: {what}')


def _header(path: str) -> tuple[list[str], int, float]:
  """The MOTION block's lines, its frame count and frame time, after checking that the
  hierarchy is complete (so that bvhio cannot run past the end of the file)."""
  try:
    with open(path, 'rb') as f:
      text = f.read().decode('utf-8')
  except UnicodeDecodeError:
    _fail(path, 'not a BVH file (not text); expected a HIERARCHY section and a MOTION section.')
  lines = text.splitlines()
  words = [line.split() for line in lines]
  filled = [i for i, w in enumerate(words) if w]
  if not filled or words[filled[0]] != ['HIERARCHY']:
    _fail(path, 'not a BVH file: it does not start with HIERARCHY.')
  motion = next((i for i in filled if words[i] == ['MOTION']), None)
  after = [i for i in filled if motion is not None and i > motion]
  if motion is None or len(after) < 2:
    _fail(path, 'no complete MOTION section (a truncated file?).')
  head = ' '.join(lines[:motion])
  if head.count('{') != head.count('}'):
    _fail(path, 'the HIERARCHY has unbalanced braces (a truncated or damaged file).')
  frames, frame_time = words[after[0]], words[after[1]]
  try:
    assert frames[0] == 'Frames:' and len(frames) == 2 and frame_time[:2] == ['Frame', 'Time:']
    count, dt = int(frames[1]), float(frame_time[2])
  except (AssertionError, IndexError, ValueError):
    _fail(path, 'MOTION must begin with "Frames: <count>" and "Frame Time: <seconds>".')
  if count < 1 or not 1e-4 <= dt <= 1.0:
    _fail(path, f'{count} frames of {dt:g} s: expected at least one frame and a frame time '
          'between 0.0001 and 1 s.')
  return [lines[i] for i in after[2:]], count, dt


def _motion(path: str, lines: list[str], count: int, channels: int) -> np.ndarray:
  if len(lines) != count:
    _fail(path, f'declares {count} frames but holds {len(lines)} (a truncated or damaged file?).')
  bad = next((k for k, line in enumerate(lines) if len(line.split()) != channels), None)
  if bad is not None:
    _fail(path, f'frame {bad} has {len(lines[bad].split())} values; the hierarchy has '
          f'{channels} channels.')
  try:
    values = np.array(' '.join(lines).split(), np.float64).reshape(count, channels)
  except ValueError:
    _fail(path, 'the MOTION block holds something other than numbers.')
  if not np.all(np.isfinite(values)):
    _fail(path, f'contains NaN or inf (first at frame {np.argwhere(~np.isfinite(values))[0][0]}).')
  return values


def read(path: str) -> Bvh:
  """Every joint's world position per frame (and in the rest pose) of a BVH file."""
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', PendingDeprecationWarning)  # it imports PyGLM by its old name
    import bvhio  # pylint: disable=g-import-not-at-top
  lines, count, dt = _header(path)
  try:
    root = bvhio.readAsBvh(path, loadKeyFrames=False).Root
  except (SyntaxError, ValueError, IndexError) as e:
    where = f' (line {e.args[1][1]})' if len(e.args) > 1 and isinstance(e.args[1], tuple) else ''
    _fail(path, f'not a valid BVH hierarchy: {e.args[0] if e.args else e}{where}.')
  joints = [j for j, _, _ in root.layout()]
  index = {id(j): i for i, j in enumerate(joints)}
  parents = [-1] * len(joints)
  for j in joints:
    for c in j.Children:
      parents[index[id(c)]] = index[id(j)]
  names = [j.Name for j in joints]
  dup = next((n for n in names if names.count(n) > 1), None)
  if dup:
    _fail(path, f'the joint name {dup!r} appears more than once.')
  values = _motion(path, lines, count, sum(len(j.Channels) for j in joints))

  num = len(joints)
  pos = np.zeros((count, num, 3))
  rot = np.zeros((count, num, 3, 3))
  col = 0
  for i, j in enumerate(joints):
    local_t = np.tile(np.array(j.Offset, np.float64), (count, 1))
    order, angles = '', []
    for channel in j.Channels:
      axis, kind = channel[0].upper(), channel[1:].lower()
      if kind == 'position' and axis in 'XYZ':
        local_t[:, 'XYZ'.index(axis)] = values[:, col]  # position channels replace the OFFSET
      elif kind == 'rotation' and axis in 'XYZ':
        order += axis
        angles.append(values[:, col])
      else:
        _fail(path, f'joint {j.Name!r} has an unknown channel {channel!r}.')
      col += 1
    if len(order) > 3:
      _fail(path, f'joint {j.Name!r} has {len(order)} rotation channels; BVH allows three.')
    local_r = (Rotation.from_euler(order, np.stack(angles, -1), degrees=True).as_matrix()
               if order else np.broadcast_to(np.eye(3), (count, 3, 3)))
    p = parents[i]
    if p < 0:
      pos[:, i], rot[:, i] = local_t, local_r
    else:
      pos[:, i] = pos[:, p] + np.einsum('tab,tb->ta', rot[:, p], local_t)
      rot[:, i] = rot[:, p] @ local_r
  rest = np.zeros((num, 3))
  for i, j in enumerate(joints):
    rest[i] = (rest[parents[i]] if parents[i] >= 0 else 0.0) + np.array(j.Offset)
  # End Sites of leaves, as pseudo joints (the CMU skeleton's head top is the Head's End Site).
  ends = [i for i, j in enumerate(joints) if not j.Children and names[i] + END not in names]
  for i in ends:
    offset = np.array(joints[i].EndSite, np.float64)
    names.append(names[i] + END)
    parents.append(i)
    pos = np.concatenate([pos, (pos[:, i] + rot[:, i] @ offset)[:, None]], axis=1)
    rest = np.concatenate([rest, (rest[i] + offset)[None]])
  return Bvh(names, parents, pos, rest, 1.0 / dt)


def load_joint_map(joint_map) -> dict[str, str]:
  """A joint map (a dict, or the path of a JSON file of one): our joint name -> file joint."""
  if not joint_map:
    return {}
  if isinstance(joint_map, str):
    try:
      with open(joint_map) as f:
        joint_map = json.load(f)
    except FileNotFoundError:
      raise errors.InputError(f'{joint_map}: joint map file not found.') from None
    except (ValueError, UnicodeDecodeError) as e:
      raise errors.InputError(f'{joint_map}: not a JSON joint map ({e}).') from None
  if not isinstance(joint_map, dict) or not all(
      isinstance(k, str) and isinstance(v, str) for k, v in joint_map.items()):
    raise errors.InputError('a joint map must be a JSON object of our joint names to the '
                            'file\'s joint names, e.g. {"r_knee": "RightShin"}.')
  unknown = sorted(set(joint_map) - set(skeleton.JOINT_NAMES))
  if unknown:
    raise errors.InputError(f'joint map: unknown joint names {", ".join(unknown)}; ours are '
                            f'{", ".join(skeleton.JOINT_NAMES)}.')
  return dict(joint_map)


def _ancestors(parents: list[int], i: int) -> list[int]:
  out = []
  while parents[i] >= 0:
    i = parents[i]
    out.append(i)
  return out


def _map_help(bvh: Bvh, missing) -> str:
  found = ', '.join(n for n in bvh.names if not n.endswith(END))
  return (f'cannot find our joint(s) {", ".join(missing)} among the file\'s joints ({found}). '
          'Write a JSON file mapping our joint names to the file\'s, e.g. {"r_knee": '
          '"RightShin", "head": "Head' + END + '"} (a leaf\'s End Site is <name>' + END +
          '), and pass it with --joint_map=map.json; our joints: ' +
          ', '.join(skeleton.JOINT_NAMES) + '.')


def to_skeleton(bvh: Bvh, path: str, joint_map=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
  """(T, 17, 3) positions, (17, 3) rest pose, and notes on joints that were derived."""
  given = load_joint_map(joint_map)
  by_norm = {}
  for i, name in enumerate(bvh.names):
    by_norm.setdefault(normalize(name), i)
  chosen, notes = {}, []
  for j, ours in enumerate(skeleton.JOINT_NAMES):
    if ours in given:
      if given[ours] not in bvh.names:
        _fail(path, f'the joint map maps {ours} to {given[ours]!r}, which is not in the file. '
              + _map_help(bvh, [ours]))
      chosen[j] = bvh.names.index(given[ours])
    elif ours != 'spine':
      hit = next((by_norm[c] for c in CANDIDATES[ours] if c in by_norm), None)
      if hit is not None:
        chosen[j] = hit
  missing = [skeleton.JOINT_NAMES[j] for j in range(skeleton.NUM_JOINTS)
             if j not in chosen and skeleton.JOINT_NAMES[j] not in ('spine', 'head')]
  if missing:
    _fail(path, _map_help(bvh, missing))
  for j, i in chosen.items():  # each joint must hang below its parent's joint in the file
    # (but arms branch off the spine below the neck in most rigs: below the pelvis will do).
    p = 0 if j in (11, 14) else skeleton.PARENTS[j]
    if p >= 0 and p in chosen and chosen[p] not in _ancestors(bvh.parents, i):
      _fail(path, f'our {skeleton.JOINT_NAMES[j]} ({bvh.names[i]}) is not below our '
            f'{skeleton.JOINT_NAMES[p]} ({bvh.names[chosen[p]]}) in the file\'s hierarchy: '
            + _map_help(bvh, [skeleton.JOINT_NAMES[j]]))
  pos = np.zeros(bvh.positions.shape[:1] + (skeleton.NUM_JOINTS, 3))
  rest = np.zeros((skeleton.NUM_JOINTS, 3))
  for j, i in chosen.items():
    pos[:, j], rest[j] = bvh.positions[:, i], bvh.rest[i]
  if 7 not in chosen:
    _spine(bvh, chosen, pos, rest, notes)
  if 10 not in chosen:
    pos[:, 10] = retarget.head_top(pos)
    rest[10] = retarget.head_top(rest[None])[0]
    notes.append('head top derived from the thorax-to-head direction (no HeadTop or End Site)')
  return pos, rest, notes


def _spine(bvh: Bvh, chosen: dict, pos, rest, notes: list):
  """Our spine: the file joint between the pelvis and the thorax whose rest height along that
  chain is nearest the reference's (lower spine / (lower + upper spine)), else interpolated."""
  ref = retarget.REFERENCE_BONE_LENGTHS
  ratio = ref[7] / (ref[7] + ref[8])
  pelvis, thorax = chosen[0], chosen[8]
  chain = [i for i in _ancestors(bvh.parents, thorax) if pelvis in _ancestors(bvh.parents, i)]
  axis = bvh.rest[thorax] - bvh.rest[pelvis]
  if chain and np.dot(axis, axis) > 0:
    heights = [np.dot(bvh.rest[i] - bvh.rest[pelvis], axis) / np.dot(axis, axis) for i in chain]
    i = chain[int(np.argmin(np.abs(np.array(heights) - ratio)))]
    pos[:, 7], rest[7] = bvh.positions[:, i], bvh.rest[i]
    return
  pos[:, 7] = pos[:, 0] + ratio * (pos[:, 8] - pos[:, 0])
  rest[7] = rest[0] + ratio * (rest[8] - rest[0])
  notes.append('spine interpolated between pelvis and thorax (no joint between them)')
