"""Human3.6M layouts in a manual directory: where each one's files are, and which one is there.

The three layouts (`bds_jax.h36m.formats` reads them):
  'cdf'     <root>/<S>/MyPoseFeatures/D3_Positions/<Action> <sub>.cdf (or .../Poses_D3_Positions/)
  'npz'     <root>/data_3d_h36m.npz
  'expmap'  <root>/S<k>/<action>_<sub>.txt (or <root>/h3.6m/dataset/S<k>/...)
"""

import logging
import re
from pathlib import Path

from bds_jax.h36m.npz import NPZ_FILENAME

LAYOUTS = ('cdf', 'npz', 'expmap')
SUBJECTS = ('S1', 'S5', 'S6', 'S7', 'S8', 'S9', 'S11')
CDF_DIRS = ('MyPoseFeatures/D3_Positions', 'Poses_D3_Positions')
EXPMAP_DIRS = ('.', 'h3.6m/dataset')

_SUBJECT_DIR_RE = re.compile(r'^S\d+$')

logger = logging.getLogger(__name__)



def subject_dirs(base: Path) -> dict[str, Path]:
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


def cdf_dirs(root: Path) -> dict[str, Path]:
  found = {}
  for subject, subject_dir in subject_dirs(root).items():
    for rel in CDF_DIRS:
      if any((subject_dir / rel).glob('*.cdf')):
        found[subject] = subject_dir / rel
        break
  return found


def expmap_dirs(root: Path) -> dict[str, Path]:
  for rel in EXPMAP_DIRS:
    found = {s: d for s, d in subject_dirs(root / rel).items() if any(d.glob('*.txt'))}
    if found:
      return found
  return {}


def present_layouts(root: Path) -> list[str]:
  present = []
  if cdf_dirs(root):
    present.append('cdf')
  if (root / NPZ_FILENAME).is_file():
    present.append('npz')
  if expmap_dirs(root):
    present.append('expmap')
  return present


def listing(root: Path, limit: int = 30) -> str:
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
  present = present_layouts(root)
  if len(present) == 1:
    return present[0]
  if not present:
    raise ValueError(
        f'No Human3.6M poses found in {root}.\n{listing(root)}\n{EXPECTED_LAYOUTS}')
  raise ValueError(
      f'{root} holds several Human3.6M layouts ({", ".join(present)}); choose one explicitly '
      f'(layout=... or the matching builder config).')
