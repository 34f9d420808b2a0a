"""A user's motion files as the model's poses: one entry point, `read_motion`.

Every reader returns the 17 joints of bds_jax.skeleton in metres, z up, at the requested frame
rate (the model's: 50 / frame_lag Hz), or refuses the file with one line (errors.InputError)
that names it and says what was wrong. Formats (`format='auto'` picks by extension and shape):

  bvh          .bvh motion capture (bds_jax.motion.bvh: CMU, Mixamo, Biped and generic joint
               names, or a JSON joint map). Frame rate from its Frame Time.
  smpl         SMPL / SMPL-H / SMPL-X joint positions (T, 22+, 3), as AMASS pipelines export
               them: a .npz (joints under `joints`, `Jtr`, `positions`, ... and the frame rate
               under `mocap_framerate`, `mocap_frame_rate` or `fps`) or a .npy (frame rate by
               `source_fps`). SMPL has no head top: it is derived (retarget.head_top).
  videopose3d  VideoPose3D-style predictions (T, 17, 3) in the Human3.6M order (ours), camera
               coordinates (x right, y down, z forward). Assumed: a level camera, so gravity
               is the camera's +y; the pelvis path is whatever the file holds (VideoPose3D's
               own output is root-relative, so the body walks on the spot).
  npy          this project's own (T, 17, 3) or (N, T, 17, 3) metres, z up, already at the
               model's rate (unless `source_fps` says otherwise): returned as stored.

For bvh, smpl and videopose3d the units are detected from the body's size (m, cm, mm, inches
or CMU's 1/0.45 inch; `units` overrides), the up axis from the body's upright direction (the
rest pose of a BVH, the median posture of an array; `up` overrides), and with `place=True` the
clip is put where the training data lives: the first frame's pelvis above the origin and the
clip's lowest ankle on the floor z = 0 (the synthetic data's floor). Positions are resampled
by linear interpolation. Bones are then rescaled to the training skeleton
(bds_jax.motion.retarget) when they differ from it by more than retarget.DEFAULT_THRESHOLD
(`retarget='always'` or `'never'` to choose).
"""

import logging
import os
import zipfile

import numpy as np

from bds_jax import errors
from bds_jax import skeleton
from bds_jax.motion import bvh as bvh_lib
from bds_jax.motion import retarget as retarget_lib

log = logging.getLogger(__name__)

FORMATS = ('auto', 'npy', 'bvh', 'smpl', 'videopose3d')
# Metres per file unit. 'cmu': the CMU mocap database's unit (its ASF length scale 0.45).
UNITS = {'m': 1.0, 'cm': 0.01, 'mm': 0.001, 'in': 0.0254, 'cmu': 0.0254 / 0.45}
UP_AXES = ('auto', 'x', 'y', 'z', '-x', '-y', '-z')
EXTENSIONS = ('.npy', '.npz', '.bvh')

# The SMPL joints (the first 22 are shared by SMPL, SMPL-H and SMPL-X) that give ours, with
# SMPL's joint order: 0 pelvis, 1 l_hip, 2 r_hip, 3 spine1, 4 l_knee, 5 r_knee, 6 spine2,
# 7 l_ankle, 8 r_ankle, 9 spine3, 10 l_foot, 11 r_foot, 12 neck, 13 l_collar, 14 r_collar,
# 15 head, 16 l_shoulder, 17 r_shoulder, 18 l_elbow, 19 r_elbow, 20 l_wrist, 21 r_wrist.
# spine2 sits at H3.6M's spine height, SMPL's neck at the thorax and its head joint (the base
# of the skull) at H3.6M's neck/nose; the head top (-1) is derived.
SMPL_TO_OURS = (0, 2, 5, 8, 1, 4, 7, 6, 12, 15, -1, 16, 18, 20, 17, 19, 21)
SMPL_JOINT_KEYS = ('joints', 'Jtr', 'jtr', 'positions', 'joints3d', 'joints_3d', 'pose_joints',
                   'smpl_joints', 'keypoints3d')
FPS_KEYS = ('mocap_framerate', 'mocap_frame_rate', 'fps', 'framerate', 'frame_rate')
VIDEOPOSE_KEYS = ('positions_3d', 'prediction', 'predictions', 'poses', 'positions')

# The ankle-to-head-top chain (thigh, shin, lower and upper spine, neck, head) of the reference
# skeleton; a file's units are the ones that make its chain nearest this. Bodies outside
# BODY_RANGE_M after scaling are refused.
_CHAIN = (2, 3, 7, 8, 9, 10)
REFERENCE_CHAIN_M = float(sum(retarget_lib.REFERENCE_BONE_LENGTHS[j] for j in _CHAIN))
BODY_RANGE_M = (0.5, 3.0)
MIN_BONE_FRACTION = 0.01  # a bone shorter than this fraction of the chain is "zero-length"
MAX_COORDINATE_M = 1000.0


def is_motion_file(path: str, format: str = 'auto',  # pylint: disable=redefined-builtin
                   source_fps: float | None = None) -> bool:
  """Whether `path` needs `read_motion`'s conversions: anything but this project's own .npy
  poses at the model's rate (which callers may load as stored)."""
  if os.path.isdir(path) or not os.path.exists(path):
    return False
  return bool(source_fps) or detect_format(path, format) != 'npy'


def detect_format(path: str, format: str = 'auto') -> str:  # pylint: disable=redefined-builtin
  """The format `read_motion` reads `path` as."""
  if format not in FORMATS:
    raise errors.InputError(f'motion format {format!r}: expected one of {", ".join(FORMATS)}.')
  if format != 'auto':
    return format
  ext = os.path.splitext(path)[1].lower()
  if ext == '.bvh':
    return 'bvh'
  if ext == '.npz':
    return 'smpl'
  if ext == '.npy':
    try:
      shape = np.load(path, mmap_mode='r', allow_pickle=False).shape
    except (ValueError, OSError, EOFError):
      return 'npy'  # its own reader says what is wrong
    return 'smpl' if len(shape) == 3 and shape[1] >= 22 and shape[2] == 3 else 'npy'
  raise errors.InputError(f'{path}: unknown motion file type {ext!r}; expected .bvh, .npz or '
                          '.npy (or name the format).')


# pylint: disable-next=redefined-builtin
def read_motion(path: str, fps: float = skeleton.FPS, *, format: str = 'auto',
                source_fps: float | None = None, units: str | float = 'auto', up: str = 'auto',
                joint_map=None, retarget: str = 'auto', place: bool = True,
                min_frames: int = 0) -> np.ndarray:
  """Poses (T, 17, 3) float32 in metres, z up, at `fps`, from a motion file.

  Args:
    path: a .bvh, .npz or .npy file (see the module docstring).
    fps: the frame rate wanted (the model's: 50 / frame_lag).
    format: 'auto' (by extension and shape), 'bvh', 'smpl', 'videopose3d' or 'npy'.
    source_fps: the file's frame rate, overriding the file's own (needed for a .npy of SMPL
      joints or VideoPose3D output; 'npy' files are otherwise taken to be at `fps`).
    units: 'auto', a name in UNITS or metres per file unit.
    up: 'auto' or the file's up axis ('y', '-z', ...).
    joint_map: bvh only: our joint name -> the file's, as a dict or a JSON file's path.
    retarget: 'auto', 'always' or 'never' (bds_jax.motion.retarget).
    place: move the clip over the origin with its lowest ankle at z = 0 (not for 'npy').
    min_frames: refuse clips shorter than this after resampling.

  Returns:
    (T, 17, 3), or (N, T, 17, 3) for an 'npy' file that holds N clips.
  """
  if os.path.isdir(path):
    raise errors.InputError(f'{path} is a directory; expected a motion file.')
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path}: motion file not found.')
  if not fps > 0:
    raise errors.InputError(f'fps={fps!r}: must be positive.')
  if source_fps is not None and not 0 < source_fps <= 10000:
    raise errors.InputError(f'{path}: source frame rate {source_fps!r} must be in (0, 10000] Hz.')
  fmt = detect_format(path, format)
  if fmt == 'npy':
    return _finish(path, _read_npy(path), fps, source_fps or fps, retarget, min_frames, [])
  rest, notes, fixed_up = None, [], None
  if fmt == 'bvh':
    bvh = bvh_lib.read(path)
    poses, rest, notes = bvh_lib.to_skeleton(bvh, path, joint_map)
    file_fps = bvh.fps
  elif fmt == 'smpl':
    poses, file_fps = _read_smpl(path)
    notes.append('head top derived from SMPL\'s neck and head joints')
  else:
    poses, file_fps = _read_array(path, VIDEOPOSE_KEYS, 'VideoPose3D'), None
    if poses.shape[1:] != (skeleton.NUM_JOINTS, 3):
      raise errors.InputError(f'{path}: VideoPose3D poses must have shape (T, 17, 3) (the '
                              f'Human3.6M 17-joint order), got {poses.shape}.')
    fixed_up = '-y'  # camera coordinates: y points down
  src = source_fps or file_fps
  if src is None:
    raise errors.InputError(f'{path}: the file does not say its frame rate; pass it '
                            '(--source_fps=<Hz> on the command line).')
  poses, how = _to_metres_z_up(path, poses, rest, units, up if up != 'auto' else fixed_up or up)
  notes.insert(0, how)
  if place:
    poses = _place(poses)
  return _finish(path, poses, fps, src, retarget, min_frames, [f'{fmt}'] + notes)


def _finish(path, poses, fps, src, retarget, min_frames, notes):
  poses = resample(poses, src, fps)
  frames = poses.shape[-3]
  if frames < max(min_frames, 1):
    raise errors.InputError(
        f'{path}: {frames} frames at {fps:g} Hz ({frames / fps:.2f} s), need at least '
        f'{min_frames} (seq_len + 1 at the model\'s frame rate).')
  check_body(poses, path)
  if notes:
    log.info('%s: %s; %g Hz -> %g Hz, %d frames.', path, ', '.join(notes), src, fps, frames)
  return retarget_lib.maybe_retarget(poses, retarget, path)


def resample(poses, src_fps: float, fps: float) -> np.ndarray:
  """(..., T, 17, 3) poses at src_fps, linearly interpolated at fps from the first frame."""
  poses = np.asarray(poses, np.float64)
  if abs(src_fps - fps) < 1e-9 * fps:
    return poses
  frames = poses.shape[-3]
  t = np.arange(int(np.floor((frames - 1) * fps / src_fps + 1e-9)) + 1) * (src_fps / fps)
  lo = np.minimum(np.floor(t).astype(int), frames - 1)
  hi = np.minimum(lo + 1, frames - 1)
  w = (t - lo)[:, None, None]
  return poses[..., lo, :, :] * (1.0 - w) + poses[..., hi, :, :] * w


def _load(path: str, what: str):
  try:
    return np.load(path, allow_pickle=False)
  except ValueError as e:
    raise errors.InputError(f'{path}: not a plain NumPy file ({e}); save {what} with np.save '
                            'or np.savez of float arrays.') from None
  except (OSError, EOFError, zipfile.BadZipFile) as e:
    raise errors.InputError(f'{path}: cannot read it as a NumPy file ({e}).') from None


def _read_array(path: str, keys, what: str) -> np.ndarray:
  data = _load(path, what)
  if isinstance(data, np.ndarray):
    return _floats(path, data)
  with data:
    try:
      names = list(data.keys())
      key = next((k for k in keys if k in names), None)
      arrays = [k for k in names if data[k].ndim == 3]
      if key is None and len(arrays) == 1:
        key = arrays[0]
      if key is None:
        raise errors.InputError(f'{path}: no {what} joint positions among its arrays '
                                f'({", ".join(names) or "none"}); expected one of '
                                f'{", ".join(keys)}.')
      return _floats(path, data[key])
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
      raise errors.InputError(f'{path}: cannot read it as a NumPy file ({e}).') from None


def _floats(path: str, poses: np.ndarray) -> np.ndarray:
  if not np.issubdtype(poses.dtype, np.floating):
    raise errors.InputError(f'{path}: poses must be floats, got dtype {poses.dtype}.')
  if poses.ndim < 2 or poses.shape[-1] != 3:
    raise errors.InputError(f'{path}: expected joint positions (T, J, 3), got shape '
                            f'{poses.shape}.')
  if not np.all(np.isfinite(poses)):
    bad = np.argwhere(~np.isfinite(poses))[0]
    where = tuple(int(i) for i in bad)
    raise errors.InputError(f'{path}: contains NaN or inf (first at index {where}).')
  return poses.astype(np.float64)


def _read_npy(path: str) -> np.ndarray:
  poses = _load(path, 'poses')
  if not isinstance(poses, np.ndarray) or poses.ndim not in (3, 4) or poses.shape[-2:] != (
      skeleton.NUM_JOINTS, 3) or not all(poses.shape):
    raise errors.InputError(f'{path}: poses must have shape (T, 17, 3) or (N, T, 17, 3) (the 17 '
                            f'joints of bds_jax.skeleton, metres), got '
                            f'{getattr(poses, "shape", "an archive")}.')
  return _floats(path, poses)


def _read_smpl(path: str) -> tuple[np.ndarray, float | None]:
  joints = _read_array(path, SMPL_JOINT_KEYS, 'SMPL')
  if joints.ndim != 3 or joints.shape[1] < 22:
    raise errors.InputError(f'{path}: SMPL joint positions must have shape (T, 22+, 3) (SMPL, '
                            f'SMPL-H or SMPL-X joint order), got {joints.shape}. (AMASS\'s '
                            '`poses`/`betas` are parameters: run the body model to get joints.)')
  fps = None
  if path.lower().endswith('.npz'):
    with _load(path, 'SMPL joints') as data:
      key = next((k for k in FPS_KEYS if k in data.keys()), None)
      if key is not None:
        try:
          fps = float(np.asarray(data[key]).reshape(()))
        except (TypeError, ValueError):
          raise errors.InputError(
              f'{path}: {key} must be one number (frames per second).') from None
  out = np.zeros((len(joints), skeleton.NUM_JOINTS, 3))
  for ours, smpl in enumerate(SMPL_TO_OURS):
    if smpl >= 0:
      out[:, ours] = joints[:, smpl]
  out[:, 10] = retarget_lib.head_top(out)
  return out, fps


def _rotation_to_z_up(up: str) -> np.ndarray:
  """A proper rotation (no mirroring) that takes the axis `up` to +z."""
  sign = -1.0 if up.startswith('-') else 1.0
  axis = up.lstrip('+-')
  if axis == 'z':
    return np.diag([1.0, sign, sign])  # identity, or 180 degrees about x
  if axis == 'y':  # 90 degrees about x: (x, y, z) -> (x, -z, y), or its inverse
    return np.array([[1.0, 0, 0], [0, 0, -sign], [0, sign, 0]])
  return np.array([[0, 0, -sign], [0, 1.0, 0], [sign, 0, 0]])  # about y: x -> z


def _chain(poses) -> float:
  lengths = retarget_lib.mean_bone_lengths(poses)
  return float(sum(lengths[j] for j in _CHAIN))


def _to_metres_z_up(path, poses, rest, units, up) -> tuple[np.ndarray, str]:
  chain = _chain(poses)
  if units == 'auto':
    if not chain > 0:
      raise errors.InputError(f'{path}: every bone has zero length; is the joint order right?')
    unit = min(UNITS, key=lambda u: abs(np.log(chain * UNITS[u] / REFERENCE_CHAIN_M)))
    scale, how = UNITS[unit], f'units {unit} (detected)'
  else:
    try:
      scale = UNITS[units] if units in UNITS else float(units)
    except (TypeError, ValueError):
      raise errors.InputError(f'units={units!r}: expected auto, {", ".join(UNITS)} or metres per '
                              'unit.') from None
    how = f'units {units}'
  poses = poses * scale
  lo, hi = BODY_RANGE_M
  if not lo <= chain * scale <= hi:
    raise errors.InputError(
        f'{path}: the body is {chain * scale:.3g} m from ankle to head top in {how}; a human is '
        f'{lo:g} to {hi:g} m: give the units (--units=cm, m, mm, in) or check the joints.')
  lengths = retarget_lib.mean_bone_lengths(poses)
  short = [j for j in range(1, skeleton.NUM_JOINTS)
           if lengths[j] < MIN_BONE_FRACTION * chain * scale]
  if short:
    names = ', '.join(f'{skeleton.JOINT_NAMES[skeleton.PARENTS[j]]}-{skeleton.JOINT_NAMES[j]}'
                      for j in short)
    raise errors.InputError(f'{path}: zero-length bones ({names}): two of our joints fall on one '
                            'of the file\'s; check the joint order or the joint map.')
  if up not in UP_AXES and up.lstrip('+') not in UP_AXES:
    raise errors.InputError(f'up={up!r}: expected one of {", ".join(UP_AXES)}.')
  if up == 'auto':
    # Upright: from the ankles to the neck, in the rest pose when there is one.
    body = rest[None] if rest is not None else poses
    v = np.median(body[:, 9] - body[:, (3, 6)].mean(axis=1), axis=0)
    axis = int(np.argmax(np.abs(v)))
    up = ('-' if v[axis] < 0 else '') + 'xyz'[axis]
    how += f', up {up} (detected)'
  else:
    how += f', up {up}'
  return poses @ _rotation_to_z_up(up).T, how


def _place(poses: np.ndarray) -> np.ndarray:
  """The first frame's pelvis above the origin, the clip's lowest ankle at z = 0."""
  poses = poses.copy()
  poses[..., :2] -= poses[0, 0, :2]
  poses[..., 2] -= poses[:, (3, 6), 2].min()
  return poses


def check_body(poses, path: str):
  """Refuses poses with coordinates beyond MAX_COORDINATE_M or implausible bone lengths."""
  extent = float(np.max(np.abs(poses)))
  if extent > MAX_COORDINATE_M:
    raise errors.InputError(f'{path}: coordinates reach {extent:.3g} m; poses must be within '
                            f'{MAX_COORDINATE_M:g} m of the origin (check the units).')
  longest = float(np.max(retarget_lib.mean_bone_lengths(poses)))
  if not 0.1 <= longest <= 1.0:
    raise errors.InputError(f'{path}: the longest bone is {longest:.3g} m (median over frames); '
                            'a human body has 0.1 to 1 m. Check the units and the joint order.')
