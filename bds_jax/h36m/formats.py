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
import io
import logging
import pickle
import re
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from bds_jax.h36m import actions as actions_lib
from bds_jax.h36m import kinematics

LAYOUTS = ('cdf', 'npz', 'expmap')
SUBJECTS = ('S1', 'S5', 'S6', 'S7', 'S8', 'S9', 'S11')
NUM_JOINTS_32 = kinematics.NUM_JOINTS_32

CDF_DIRS = ('MyPoseFeatures/D3_Positions', 'Poses_D3_Positions')
CDF_VARIABLE = 'Pose'
NPZ_FILENAME = 'data_3d_h36m.npz'
NPZ_KEY = 'positions_3d'
EXPMAP_DIRS = ('.', 'h3.6m/dataset')

# No Human3.6M joint is ever this far from the capture-room origin; a larger value means the
# units are wrong (e.g. millimetres in an npz that should hold metres).
MAX_ABS_COORD_M = 50.0

_SUBJECT_DIR_RE = re.compile(r'^S\d+$')

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
# (b) VideoPose3D-style npz, read with a restricted unpickler.


class UnsafePickleError(_BadInput):
  """The npz asked to construct something a pose file never needs."""


def _reconstruct_fn():
  try:
    from numpy._core import multiarray  # pylint: disable=g-import-not-at-top
  except ImportError:  # NumPy 1.x.
    from numpy.core import multiarray  # pylint: disable=g-import-not-at-top
  return multiarray._reconstruct  # pylint: disable=protected-access


# The only globals that `np.save` of a dict of float arrays writes (pickle protocol 3 in NumPy 1.x,
# 4 in NumPy 2.x): ndarray.__reduce__ gives (_reconstruct, (ndarray, (0,), b'b'), state) and each
# dtype reduces to numpy.dtype. The module of _reconstruct was renamed in NumPy 2. Dicts, strings,
# tuples, bytes and numbers are built by opcodes and need no globals.
_NPZ_GLOBALS = {
    ('numpy._core.multiarray', '_reconstruct'): _reconstruct_fn,
    ('numpy.core.multiarray', '_reconstruct'): _reconstruct_fn,
    ('numpy', 'ndarray'): lambda: np.ndarray,
    ('numpy', 'dtype'): lambda: np.dtype,
}


class _RestrictedUnpickler(pickle.Unpickler):
  """Unpickler that can build dicts, strings and NumPy arrays, and nothing else."""

  def __init__(self, file, source: str):
    # latin1 lets Python-2-era array buffers load, as np.load recommends.
    super().__init__(file, encoding='latin1')
    self._source = source

  def find_class(self, module, name):
    make = _NPZ_GLOBALS.get((module, name))
    if make is None:
      raise UnsafePickleError(
          f'{self._source}: refusing to unpickle {module}.{name}; {NPZ_KEY} may only hold dicts, '
          'strings and NumPy arrays. The file is not a genuine data_3d_h36m.npz and may be '
          'malicious.')
    return make()


def load_npz_positions(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
  """Loads `positions_3d` from a data_3d_h36m.npz without trusting its pickle.

  Args:
    path: the npz file.

  Returns:
    {subject: {action key as stored: array}}; the arrays are validated later, per entry.

  Raises:
    ValueError: not a zip/npz, no `positions_3d`, truncated, or a pickle that asks for anything
      beyond dicts, strings and arrays (UnsafePickleError).
  """
  member = NPZ_KEY + '.npy'
  try:
    with zipfile.ZipFile(path) as zf:
      if member not in zf.namelist():
        raise _BadInput(
            f'{path}: no key {NPZ_KEY!r}; the npz holds '
            f'{[n.removesuffix(".npy") for n in zf.namelist()]}.')
      # Read the member fully first so zip-level damage (bad CRC, cut deflate stream) surfaces
      # here, and the unpickler never sees a half stream.
      raw = io.BytesIO(zf.read(member))
    version = np.lib.format.read_magic(raw)
    if version == (1, 0):
      _, _, dtype = np.lib.format.read_array_header_1_0(raw)
    elif version == (2, 0):
      _, _, dtype = np.lib.format.read_array_header_2_0(raw)
    else:
      raise _BadInput(f'{path}: unsupported .npy format version {version} for {NPZ_KEY!r}.')
    if dtype != np.dtype(object):
      raise _BadInput(
          f'{path}: {NPZ_KEY!r} has dtype {dtype}; expected a pickled dict (object array).')
    obj = _RestrictedUnpickler(raw, str(path)).load()
  except _BadInput:
    raise
  # Damaged zips and pickles fail in many ways (BadZipFile, zlib.error, EOFError, struct.error,
  # UnpicklingError, ...); report all of them against the file.
  except Exception as e:  # pylint: disable=broad-except
    raise _BadInput(
        f'{path}: cannot read {NPZ_KEY!r} (corrupt or truncated npz?): {type(e).__name__}: {e}'
    ) from e

  if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
    obj = obj.item()
  if not isinstance(obj, dict) or not all(
      isinstance(s, str) and isinstance(v, dict) and all(isinstance(k, str) for k in v)
      for s, v in obj.items()):
    raise _BadInput(
        f'{path}: {NPZ_KEY!r} must be a dict subject -> {{action: array}}, got {type(obj)}.')
  return obj


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
# Layout detection.


def _subject_dirs(base: Path) -> dict[str, Path]:
  """The known subject folders under base; other S<k> folders are reported and ignored."""
  found = {}
  if not base.is_dir():
    return found
  for child in sorted(base.iterdir()):
    if child.is_dir() and _SUBJECT_DIR_RE.match(child.name):
      if child.name in SUBJECTS:
        found[child.name] = child
      else:
        # Info, not warning: this runs on every listing, and the folder is simply not used.
        logger.info('Ignoring %s: not one of the Human3.6M subjects %s.', child, SUBJECTS)
  return found


def _cdf_dirs(root: Path) -> dict[str, Path]:
  found = {}
  for subject, subject_dir in _subject_dirs(root).items():
    for rel in CDF_DIRS:
      if any((subject_dir / rel).glob('*.cdf')):
        found[subject] = subject_dir / rel
        break
  return found


def _expmap_dirs(root: Path) -> dict[str, Path]:
  for rel in EXPMAP_DIRS:
    found = {s: d for s, d in _subject_dirs(root / rel).items() if any(d.glob('*.txt'))}
    if found:
      return found
  return {}


def _present_layouts(root: Path) -> list[str]:
  present = []
  if _cdf_dirs(root):
    present.append('cdf')
  if (root / NPZ_FILENAME).is_file():
    present.append('npz')
  if _expmap_dirs(root):
    present.append('expmap')
  return present


def _listing(root: Path, limit: int = 30) -> str:
  """A short listing of what is in root (two levels), for error messages."""
  if not root.is_dir():
    return f'{root} does not exist or is not a directory.'
  lines = []
  for path in sorted(root.iterdir()):
    lines.append(path.name + ('/' if path.is_dir() else ''))
    if path.is_dir():
      lines.extend(f'  {c.name}' + ('/' if c.is_dir() else '') for c in sorted(path.iterdir()))
  if not lines:
    return f'{root} is empty.'
  more = f'\n  ... and {len(lines) - limit} more' if len(lines) > limit else ''
  return f'{root} contains:\n  ' + '\n  '.join(lines[:limit]) + more


EXPECTED_LAYOUTS = f"""\
Expected one of these Human3.6M layouts in the manual directory:
  cdf:    <manual_dir>/<S>/MyPoseFeatures/D3_Positions/<Action> <sub>.cdf
          (or <manual_dir>/<S>/Poses_D3_Positions/...), S in {', '.join(SUBJECTS)}
  npz:    <manual_dir>/{NPZ_FILENAME}
  expmap: <manual_dir>/S<k>/<action>_<sub>.txt (or <manual_dir>/h3.6m/dataset/S<k>/...)"""


def detect_layout(manual_dir: str | Path) -> str:
  """Returns 'cdf', 'npz' or 'expmap', whichever single layout manual_dir holds.

  Raises:
    ValueError: no layout (listing what was found and what was expected), or several (the caller
      must then choose one explicitly).
  """
  root = Path(manual_dir)
  present = _present_layouts(root)
  if len(present) == 1:
    return present[0]
  if not present:
    raise ValueError(
        f'No Human3.6M poses found in {root}.\n{_listing(root)}\n{EXPECTED_LAYOUTS}')
  raise ValueError(
      f'{root} holds several Human3.6M layouts ({", ".join(present)}); choose one explicitly '
      f'(layout=... or the matching builder config).')


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
      manual_dir: the directory holding one of the layouts (see `EXPECTED_LAYOUTS`).
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
    elif layout not in _present_layouts(self.root):
      raise ValueError(
          f'No {layout!r} Human3.6M layout found in {self.root}.\n{_listing(self.root)}\n'
          f'{EXPECTED_LAYOUTS}')
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

  def _bad(self, source_file: str, error: _BadInput) -> None:
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
    files = [(s, f) for s, d in _cdf_dirs(self.root).items() if s in subjects
             for f in sorted(d.glob('*.cdf'))]
    return self._named_entries(files, lambda p: p.stem, read_cdf_poses)

  def _expmap_entries(self, subjects) -> Iterator[_Entry]:
    files = [(s, f) for s, d in _expmap_dirs(self.root).items() if s in subjects
             for f in sorted(d.glob('*.txt'))]
    return self._named_entries(files, lambda p: p.stem,
                               lambda p: read_expmap_poses(p, root=self.expmap_root))

  def _npz_entries(self, subjects) -> Iterator[_Entry]:
    path = self.root / NPZ_FILENAME
    if self._npz_cache is None:
      try:
        self._npz_cache = load_npz_positions(path)
      except _BadInput as e:
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
