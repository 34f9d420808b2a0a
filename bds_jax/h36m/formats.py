"""Readers for the three on-disk layouts of Human3.6M 3D poses (pure NumPy, no TensorFlow).

Every reader yields one `Sequence` per (subject, action, sub-action): float32 [N, 32, 3] joint
positions in metres at 50 Hz, z up, plus the source file. Layouts inside a manual directory
(h36m-formats-and-upstream-checkpoints.md §2):

  'cdf'     official release, world frame, mm:
            <root>/<S>/MyPoseFeatures/D3_Positions/<Action> <sub>.cdf
            (or <root>/<S>/Poses_D3_Positions/..., the folder name h36m-fetch extracts to).
  'npz'     VideoPose3D-style <root>/data_3d_h36m.npz, key positions_3d, metres, world frame.
  'expmap'  exp-map text <root>/S<k>/<action>_<sub>.txt (or <root>/h3.6m/dataset/S<k>/...),
            converted by `kinematics.expmap_to_positions`; root-centred with a canonical heading by
            default, so it is not in the world frame of (a)/(b) (see kinematics.py).

Any defect (unreadable or truncated file, NaN/inf, wrong channel count, unknown action name,
implausible units) raises a ValueError that names the file; with `skip_bad_files=True` the file is
skipped instead, logged, and listed in `H36MReader.skipped`. Two files that map to the same
(subject, action, sub-action) always raise, since neither can be preferred safely.

Release quirks worth knowing:
- S11 "Directions" sub-action 2 has a corrupt video in the official release; its poses are fine,
  so nothing is done about it here (upstream blacklisted it for video only, reference spec §1.1).
  VideoPose3D's npz converter drops S11 "Directions" altogether, so (b) may lack that sequence.
- `_ALL` files (upstream action ID 1) are skipped on purpose, as upstream did.
"""

import dataclasses
import logging
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from bds_jax.h36m import actions as actions_lib
from bds_jax.h36m import kinematics
from bds_jax.h36m import layouts
from bds_jax.h36m import npz

# Where each layout's files are, and which layout a directory holds: `layouts`; the npz reader:
# `npz`. Their public names are also reachable from here.
LAYOUTS = layouts.LAYOUTS
SUBJECTS = layouts.SUBJECTS
detect_layout = layouts.detect_layout
NPZ_FILENAME = npz.NPZ_FILENAME
load_npz_positions = npz.load_npz_positions
UnsafePickleError = npz.UnsafePickleError
NUM_JOINTS_32 = kinematics.NUM_JOINTS_32

CDF_VARIABLE = 'Pose'

# No Human3.6M joint is ever this far from the capture-room origin; a larger value means the
# units are wrong (e.g. millimetres in an npz that should hold metres).
MAX_ABS_COORD_M = 50.0

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, eq=False)
class Sequence:
  """One pose sequence.

  Attributes:
    subject: 'S1' ... 'S11'.
    action: canonical action name from `actions.ACTIONS`.
    subaction: the sub-action as spelled in the file name ('' when there is none, else digits).
      Spellings differ between layouts and subjects, so it only tells trials of one layout apart.
    poses_32: float32 [N, 32, 3] positions in metres, 50 Hz, z up.
    source_file: path relative to the manual directory; npz entries are
      '<npz>::<subject>/<key>'.
    layout: 'cdf', 'npz' or 'expmap'.
  """
  subject: str
  action: str
  subaction: str
  poses_32: np.ndarray
  source_file: str
  layout: str


@dataclasses.dataclass(frozen=True)
class BadFile:
  """A file (or npz entry) skipped under `skip_bad_files=True`, and why."""
  source_file: str
  reason: str


@dataclasses.dataclass(frozen=True)
class _Entry:
  """A sequence found by its name, not read yet."""
  subject: str
  action: str
  subaction: str
  source_file: str
  load: Callable[[], np.ndarray]


class _BadInput(ValueError):
  """A defect of one file; skippable under skip_bad_files (unlike directory-level errors)."""


def _check_positions(positions: np.ndarray, what: str) -> np.ndarray:
  """Validates [N, 32, 3] metres and returns them as float32."""
  if positions.ndim != 3 or positions.shape[1:] != (NUM_JOINTS_32, 3):
    raise _BadInput(f'{what}: expected positions of shape [N, 32, 3], got {positions.shape}.')
  if positions.shape[0] == 0:
    raise _BadInput(f'{what}: contains no frames.')
  finite = np.isfinite(positions).all(axis=(1, 2))
  if not finite.all():
    raise _BadInput(
        f'{what}: NaN or inf in {np.count_nonzero(~finite)} frame(s), first at frame '
        f'{int(np.argmin(finite))}.')
  biggest = float(np.abs(positions).max())
  if biggest > MAX_ABS_COORD_M:
    raise _BadInput(
        f'{what}: a coordinate of {biggest:.1f} m is implausible for Human3.6M; are the units '
        'right (metres expected after conversion)?')
  return positions.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# (a) Official CDF release.


def read_cdf_poses(path: str | Path) -> np.ndarray:
  """Reads a D3_Positions CDF file.

  Args:
    path: a `<Action> <sub>.cdf` file whose variable `Pose` has shape (1, N, 96), mm, world frame.

  Returns:
    float32 [N, 32, 3] positions in metres.

  Raises:
    ValueError: unreadable or truncated file, no `Pose` variable, wrong channel count, NaN/inf.
  """
  import cdflib  # pylint: disable=g-import-not-at-top  # Only this layout needs it.

  try:
    # validate=True checks the MD5 checksum of files that carry one.
    pose = np.asarray(cdflib.CDF(str(path), validate=True).varget(CDF_VARIABLE))
  # cdflib reports damaged files with assorted exception types (OSError, ValueError, IndexError,
  # OverflowError, ...), none of which name the file; turn them all into one clear error.
  except Exception as e:  # pylint: disable=broad-except
    raise _BadInput(
        f'{path}: cannot read variable {CDF_VARIABLE!r} from this CDF file (corrupt or truncated?):'
        f' {type(e).__name__}: {e}') from e
  if pose.ndim < 1 or pose.shape[-1] != NUM_JOINTS_32 * 3:
    raise _BadInput(
        f'{path}: {CDF_VARIABLE!r} has shape {pose.shape}; expected (1, N, 96), i.e. 96 channels '
        '(32 joints x xyz) per frame.')
  if not np.issubdtype(pose.dtype, np.floating):
    raise _BadInput(f'{path}: {CDF_VARIABLE!r} has dtype {pose.dtype}; expected floats.')
  # Divide in the file's own dtype, as the widely used VideoPose3D converter does, so that (a)
  # reproduces data_3d_h36m.npz made from the same release.
  return _check_positions(pose.reshape(-1, NUM_JOINTS_32, 3) / 1000, str(path))


# ---------------------------------------------------------------------------------------------
# (b) VideoPose3D-style npz: read by `npz.load_npz_positions`; each entry is validated here.


def _npz_array(value, what: str) -> np.ndarray:
  if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.floating):
    raise _BadInput(f'{what}: expected a float array, got {type(value).__name__} '
                    f'{getattr(value, "dtype", "")}.')
  if value.ndim != 3 or value.shape[1:] != (NUM_JOINTS_32, 3):
    raise _BadInput(f'{what}: expected shape [N, 32, 3] (32 joints x xyz in metres), got '
                    f'{value.shape}.')
  return _check_positions(value, what)


# ---------------------------------------------------------------------------------------------
# (c) Exp-map text release.


def read_expmap_poses(path: str | Path, root: str = 'zero') -> np.ndarray:
  """Reads an exp-map text file and runs the forward kinematics.

  Args:
    path: `<action>_<sub>.txt`, one frame per line, 99 comma-separated floats.
    root: 'zero' (default, root-centred, canonical heading) or 'keep'; see
      `kinematics.expmap_to_positions`.

  Returns:
    float32 [N, 32, 3] positions in metres.

  Raises:
    ValueError: unparsable or truncated line, wrong channel count, NaN/inf, no frames.
  """
  try:
    with warnings.catch_warnings():
      warnings.simplefilter('ignore')  # An empty file warns; it is reported below instead.
      channels = np.loadtxt(path, delimiter=',', ndmin=2, dtype=np.float64)
  except ValueError as e:
    raise _BadInput(
        f'{path}: not a valid exp-map text file (truncated or corrupt line?): {e}') from e
  if channels.shape[0] == 0:
    raise _BadInput(f'{path}: contains no frames.')
  if channels.shape[1] != kinematics.NUM_EXPMAP_CHANNELS:
    raise _BadInput(
        f'{path}: {channels.shape[1]} values per line; expected {kinematics.NUM_EXPMAP_CHANNELS} '
        '(root position + 32 axis-angle rotations).')
  finite = np.isfinite(channels).all(axis=1)
  if not finite.all():
    raise _BadInput(
        f'{path}: NaN or inf on {np.count_nonzero(~finite)} line(s), first on line '
        f'{int(np.argmin(finite)) + 1}.')
  return _check_positions(kinematics.expmap_to_positions(channels, root=root), str(path))


# ---------------------------------------------------------------------------------------------
# The reader.


class H36MReader:
  """Lists and reads the sequences of one layout in a manual directory.

  Usage:
    reader = H36MReader(manual_dir)                 # layout auto-detected
    for seq in reader.sequences(subjects=('S9', 'S11')):
      ...
    reader.skipped                                  # BadFile list, with skip_bad_files=True

  Files are listed (and their names parsed) on every call to `sequences`, and read one at a time
  as the iterator advances, so the CDF and exp-map layouts never hold the whole dataset in memory.
  """

  def __init__(self, manual_dir: str | Path, layout: str = 'auto', *,
               skip_bad_files: bool = False, expmap_root: str = 'zero'):
    """Constructs the reader.

    Args:
      manual_dir: the directory holding one of the layouts (see `layouts.EXPECTED_LAYOUTS`).
      layout: 'auto' (detect), 'cdf', 'npz' or 'expmap'.
      skip_bad_files: skip defective files (logged, listed in `skipped`) instead of raising.
      expmap_root: 'zero' or 'keep', see `kinematics.expmap_to_positions`.

    Raises:
      ValueError: no such layout in manual_dir (with a listing), or bad arguments.
    """
    self.root = Path(manual_dir)
    if layout == 'auto':
      layout = detect_layout(self.root)
    elif layout not in LAYOUTS:
      raise ValueError(f"layout must be 'auto' or one of {LAYOUTS}, got {layout!r}.")
    elif layout not in layouts.present_layouts(self.root):
      raise ValueError(
          f'No {layout!r} Human3.6M layout found in {self.root}.\n'
          f'{layouts.listing(self.root)}\n{layouts.EXPECTED_LAYOUTS}')
    if expmap_root not in kinematics.ROOT_MODES:
      raise ValueError(f'expmap_root must be one of {kinematics.ROOT_MODES}, got {expmap_root!r}.')
    self.layout = layout
    self.skip_bad_files = skip_bad_files
    self.expmap_root = expmap_root
    self._skipped: dict[str, BadFile] = {}
    self._npz_cache = None

  @property
  def skipped(self) -> list[BadFile]:
    """Files skipped so far (each once, however many passes met it)."""
    return list(self._skipped.values())

  def _bad(self, source_file: str, error: ValueError) -> None:
    if not self.skip_bad_files:
      raise error
    if source_file not in self._skipped:
      logger.warning('Skipping bad Human3.6M file: %s', error)
      self._skipped[source_file] = BadFile(source_file, str(error))

  def _rel(self, path: Path) -> str:
    return path.relative_to(self.root).as_posix()

  def _named_entries(self, files: Iterable[tuple[str, Path]], stem_of: Callable[[Path], str],
                     load: Callable[[Path], np.ndarray]) -> Iterator[_Entry]:
    for subject, path in files:
      stem = stem_of(path)
      if actions_lib.is_excluded_action_name(stem):
        logger.info('Skipping %s: the _ALL action is excluded, as upstream did.', path)
        continue
      try:
        action, sub = actions_lib.parse_action_name(stem, str(path))
      except ValueError as e:
        self._bad(self._rel(path), _BadInput(str(e)))
        continue
      yield _Entry(subject, action, sub, self._rel(path), lambda p=path: load(p))

  def _cdf_entries(self, subjects) -> Iterator[_Entry]:
    files = [(s, f) for s, d in layouts.cdf_dirs(self.root).items() if s in subjects
             for f in sorted(d.glob('*.cdf'))]
    return self._named_entries(files, lambda p: p.stem, read_cdf_poses)

  def _expmap_entries(self, subjects) -> Iterator[_Entry]:
    files = [(s, f) for s, d in layouts.expmap_dirs(self.root).items() if s in subjects
             for f in sorted(d.glob('*.txt'))]
    return self._named_entries(files, lambda p: p.stem,
                               lambda p: read_expmap_poses(p, root=self.expmap_root))

  def _npz_entries(self, subjects) -> Iterator[_Entry]:
    path = self.root / NPZ_FILENAME
    if self._npz_cache is None:
      try:
        self._npz_cache = load_npz_positions(path)
      except npz.NpzError as e:
        self._bad(NPZ_FILENAME, e)
        return
      for subject in sorted(set(self._npz_cache) - set(SUBJECTS)):
        logger.warning('Ignoring subject %r in %s: not one of %s.', subject, path, SUBJECTS)
    for subject in sorted(set(subjects) & set(self._npz_cache), key=SUBJECTS.index):
      for key in sorted(self._npz_cache[subject]):
        source = f'{NPZ_FILENAME}::{subject}/{key}'
        if actions_lib.is_excluded_action_name(key):
          continue
        try:
          action, sub = actions_lib.parse_action_name(key, f'{path}::{subject}')
        except ValueError as e:
          self._bad(source, _BadInput(str(e)))
          continue
        value = self._npz_cache[subject][key]
        yield _Entry(subject, action, sub, source,
                     lambda v=value, w=f'{path}::{subject}/{key}': _npz_array(v, w))

  def sequences(self, subjects: Iterable[str] | None = None,
                actions: Iterable[str] | None = None) -> Iterator[Sequence]:
    """Yields the sequences of the given subjects and canonical actions (default: all).

    Raises:
      ValueError: a bad file (unless skip_bad_files), or two files for one
        (subject, action, sub-action).
    """
    subjects = SUBJECTS if subjects is None else tuple(subjects)
    actions = actions_lib.ACTIONS if actions is None else tuple(actions)
    for name in subjects:
      if name not in SUBJECTS:
        raise ValueError(f'Unknown subject {name!r}; expected a subset of {SUBJECTS}.')
    for name in actions:
      actions_lib.action_id(name)  # Raises on a non-canonical name.

    entries = {'cdf': self._cdf_entries, 'npz': self._npz_entries,
               'expmap': self._expmap_entries}[self.layout](subjects)
    # Collect names first so a duplicate is reported before anything is yielded.
    chosen = {}
    for entry in entries:
      key = (entry.subject, entry.action, entry.subaction)
      if key in chosen:
        raise ValueError(
            f'{self.root}: {chosen[key].source_file!r} and {entry.source_file!r} are both '
            f'{entry.subject} {entry.action} sub-action {entry.subaction!r}; remove one.')
      chosen[key] = entry

    for entry in chosen.values():
      if entry.action not in actions:
        continue
      try:
        poses = entry.load()
      except _BadInput as e:
        self._bad(entry.source_file, e)
        continue
      yield Sequence(entry.subject, entry.action, entry.subaction, poses, entry.source_file,
                     self.layout)
    if self._skipped:
      logger.warning('Skipped %d bad Human3.6M file(s) so far in %s (skip_bad_files=True).',
                     len(self._skipped), self.root)
