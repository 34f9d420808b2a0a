"""What synthesize.py is asked to animate: windows of a split by index, or a user's pose file.

A selection is `<split>:<i>,<j>,...` (window indices of the run's windowing of that split, as
in evaluation; `<split>:auto` picks windows of different classes with a seed), or the path of
a `.npy` file of poses:

  (T, 17, 3) or (N, T, 17, 3) float, metres, z up, the 17 joints of `bds_jax.skeleton`, at the
  model's frame rate (50 / frame_lag Hz; 25 Hz for the default frame_lag 2).

A behavior source needs at least seq_len + 1 frames (its first seq_len + 1 are used); a
target start posture is the first frame. The file is loaded with allow_pickle=False, and its
poses must look like a human body in metres (`check_plausible_body`).

Motion files are read through bds_jax.motion.read_motion: a .bvh, an .npz (or a .npy of
shape (T, 22+, 3)) of SMPL joint positions, or VideoPose3D output (`format='videopose3d'`),
converted to metres, z up and the model's frame rate. Bones that differ from the training
skeleton by more than bds_jax.motion.retarget's threshold are rescaled to it, in every file.
"""

import dataclasses
import os
import re

import numpy as np

from bds_jax import errors
from bds_jax import skeleton
from bds_jax.data.windows import Windows
from bds_jax.motion import files as motion_files
from bds_jax.motion import retarget


@dataclasses.dataclass
class Clips:
  """Pose clips in metres with a title and a class name each.

  Attributes:
    poses: (N, T, 17, 3) metres.
    titles: N short titles ('S9 wave #1234').
    labels: N class names ('' when unknown, e.g. a pose file).
    normalized: (N, T, 51) the same clips normalised for the model.
  """
  poses: np.ndarray
  titles: list[str]
  labels: list[str]
  normalized: np.ndarray

  def __len__(self) -> int:
    return len(self.poses)


def parse_selection(spec: str, what: str) -> tuple[str, list[int] | None]:
  """`<split>:<i>,<j>,...` -> (split, indices); `<split>:auto` -> (split, None)."""
  m = re.fullmatch(r'\s*([A-Za-z_][\w]*)\s*:\s*(auto|[0-9][0-9,\s]*)\s*', spec or '')
  if not m:
    raise errors.InputError(f'{what}={spec!r}: expected <split>:<i>,<j>,... (window indices, e.g. '
                     f'test:0,120,480), <split>:auto, or a .npy, .npz or .bvh file.')
  if m.group(2) == 'auto':
    return m.group(1), None
  return m.group(1), [int(i) for i in m.group(2).replace(' ', '').split(',') if i]


def is_file(spec: str) -> bool:
  return spec.lower().endswith(motion_files.EXTENSIONS)


# A human body in metres: the longest bone (the median over frames; thigh or shin, ~0.45 m)
# between these, and every coordinate within this distance of the origin.
BONE_RANGE_M = (0.1, 1.0)
MAX_COORDINATE_M = 1000.0


def check_plausible_body(poses, path: str):
  """Raises InputError unless (N, T, 17, 3) `poses` are a human body in metres."""
  poses = np.asarray(poses, np.float64)
  extent = float(np.max(np.abs(poses)))
  if extent > MAX_COORDINATE_M:
    raise errors.InputError(f'{path}: coordinates reach {extent:.3g}; poses must be in metres '
                            f'within {MAX_COORDINATE_M:g} m of the origin (a file in millimetres '
                            'needs dividing by 1000).')
  parents, children = zip(*skeleton.BONES)
  lengths = np.linalg.norm(poses[..., children, :] - poses[..., parents, :], axis=-1)
  longest = float(np.max(np.median(lengths.reshape(-1, len(skeleton.BONES)), axis=0)))
  lo, hi = BONE_RANGE_M
  if not lo <= longest <= hi:
    raise errors.InputError(
        f'{path}: the longest bone is {longest:.3g} long (median over frames); a human body '
        f'in metres has {lo:g} to {hi:g} m. Check the units (metres), the joint order (the 17 '
        'joints of bds_jax.skeleton) and the shape (T, 17, 3) or (N, T, 17, 3).')


def load_pose_file(path: str, min_frames: int, normalizer, motion: dict | None = None) -> Clips:
  """A user's poses (see the module docstring) as Clips of their first min_frames. `motion`:
  read_motion's options (fps, format, source_fps, units, up, joint_map, retarget)."""
  if os.path.isdir(path):
    raise errors.InputError(f'{path} is a directory; expected a .npy pose file.')
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path}: pose file not found.')
  motion = dict(motion or {})
  name = os.path.basename(path)
  if motion_files.is_motion_file(path, motion.get('format', 'auto'), motion.get('source_fps')):
    poses = motion_files.read_motion(path, min_frames=min_frames, **motion)
    poses = (poses if poses.ndim == 4 else poses[None])[:, :min_frames]
    return Clips(poses, [f'{name}[{i}]' for i in range(len(poses))], [''] * len(poses),
                 normalizer.normalize(poses))
  try:
    poses = np.load(path, allow_pickle=False)
  except ValueError as e:
    raise errors.InputError(f'{path}: not a plain NumPy array ({e}); save poses with np.save of a '
                     'float array of shape (T, 17, 3) or (N, T, 17, 3).') from None
  if poses.ndim == 3:
    poses = poses[None]
  if poses.ndim != 4 or poses.shape[-2:] != (skeleton.NUM_JOINTS, 3):
    raise errors.InputError(f'{path}: poses must have shape (T, 17, 3) or (N, T, 17, 3) (the 17 '
                     f'joints of bds_jax.skeleton, metres), got {poses.shape}.')
  if not np.issubdtype(poses.dtype, np.floating):
    raise errors.InputError(f'{path}: poses must be floats (metres), got dtype {poses.dtype}.')
  if not np.all(np.isfinite(poses)):
    bad = np.argwhere(~np.isfinite(poses))[0]
    raise errors.InputError(f'{path}: contains NaN or inf (first at clip {bad[0]}, frame {bad[1]}, '
                     f'joint {bad[2]}).')
  if not poses.shape[0]:
    raise errors.InputError(f'{path}: holds 0 clips (shape {poses.shape}); expected at least '
                            'one clip of (T, 17, 3) poses.')
  if poses.shape[1] < min_frames:
    raise errors.InputError(f'{path}: {poses.shape[1]} frames per clip, need at least {min_frames} '
                     '(seq_len + 1 at the model\'s frame rate).')
  check_plausible_body(poses[:, :min_frames], path)
  poses = retarget.maybe_retarget(poses[:, :min_frames], motion.get('retarget', 'auto'), path)
  return Clips(poses, [f'{name}[{i}]' for i in range(len(poses))], [''] * len(poses),
               normalizer.normalize(poses))


def auto_indices(windows: Windows, n: int, seed: int, exclude_labels=()) -> list[int]:
  """n windows of different classes where possible (seeded), avoiding the class names in
  `exclude_labels` while others remain; on datasets that record where a behavior starts
  (synthetic_motion's behavior_onset), the window that starts there."""
  rng = np.random.default_rng(seed)
  seqs = windows.seqs
  onset = seqs.onset_frames()  # raw frames; behavior_onset itself is in seconds
  order = rng.permutation(len(seqs))
  chosen, excluded = [], set(exclude_labels)
  used = {i for i, name in enumerate(seqs.label_names) if name in excluded}
  for relax in (False, True):  # distinct classes first, then any
    for s in order:
      if len(chosen) == n:
        return chosen
      if windows.counts[s] == 0 or (not relax and int(seqs.labels[s]) in used):
        continue
      start = int(min(onset[s], windows.counts[s] - 1)) if onset is not None else int(
          rng.integers(windows.counts[s]))
      index = int(windows.offsets[s] + start)
      if index in chosen:
        continue
      chosen.append(index)
      used.add(int(seqs.labels[s]))
  if len(chosen) < n:
    raise errors.InputError(f'{seqs.name}/{seqs.split} has only {len(chosen)} windows; asked '
                            f'for {n}.')
  return chosen


def from_windows(windows: Windows, indices, normalizer, what: str) -> Clips:
  """Windows by index as Clips (errors name the index and the valid range)."""
  seqs = windows.seqs
  poses, titles, labels, norm = [], [], [], []
  for i in indices:
    if not 0 <= i < len(windows):
      raise errors.InputError(f'{what}: window index {i} is out of range for {seqs.name}/'
                              f'{seqs.split}, which has windows 0..{len(windows) - 1}.')
    seq, start = windows.locate(i)
    x = windows.window(seq, start)
    label = seqs.label_names[int(seqs.labels[seq])]
    norm.append(x)
    poses.append(normalizer.denormalize(x))
    titles.append(f'{seqs.subject_names[int(seqs.subjects[seq])]} {label} #{i}')
    labels.append(label)
  return Clips(np.stack(poses), titles, labels, np.stack(norm))


def select(spec: str, n: int, split_windows, normalizer, min_frames: int, what: str,
           seed: int = 0, exclude_labels=(), motion: dict | None = None) -> Clips:
  """Clips for a --source/--target flag. `split_windows(split)` gives a split's Windows;
  `motion`: options for motion files (load_pose_file)."""
  if is_file(spec):
    clips = load_pose_file(spec, min_frames, normalizer, motion)
    return clips if n <= 0 else _take(clips, n)
  split, indices = parse_selection(spec, what)
  windows = split_windows(split)
  if indices is None:
    indices = auto_indices(windows, n, seed, exclude_labels)
  return from_windows(windows, indices, normalizer, what)


def _take(clips: Clips, n: int) -> Clips:
  return Clips(clips.poses[:n], clips.titles[:n], clips.labels[:n], clips.normalized[:n])
