"""The VideoPose3D-style data_3d_h36m.npz, read without trusting its pickle.

`positions_3d` in that file is a pickled dict {subject: {action: float array}}. `np.load` with
allow_pickle would run whatever the pickle asks for; `load_npz_positions` instead unpickles with
`bds_jax.safe_pickle`, which can build plain data (dicts, strings, numbers, NumPy arrays) and
nothing else, and raises UnsafePickleError for anything more. `bds_jax.h36m.formats` validates
each entry.
"""

import io
import zipfile
from pathlib import Path

import numpy as np

from bds_jax import safe_pickle

NPZ_FILENAME = 'data_3d_h36m.npz'
NPZ_KEY = 'positions_3d'


class NpzError(ValueError):
  """A defect of the npz file (the Human3.6M reader skips the file under skip_bad_files)."""


class UnsafePickleError(NpzError, safe_pickle.UnsafePickleError):
  """The npz asked to construct something a pose file never needs."""


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
        raise NpzError(
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
      raise NpzError(f'{path}: unsupported .npy format version {version} for {NPZ_KEY!r}.')
    if dtype != np.dtype(object):
      raise NpzError(
          f'{path}: {NPZ_KEY!r} has dtype {dtype}; expected a pickled dict (object array).')
    obj = safe_pickle.load(raw, f'{path} ({NPZ_KEY})',
                           'The file is not a genuine data_3d_h36m.npz and may be malicious.')
  except safe_pickle.UnsafePickleError as e:
    raise UnsafePickleError(str(e)) from None
  except NpzError:
    raise
  # Damaged zips and pickles fail in many ways (BadZipFile, zlib.error, EOFError, struct.error,
  # UnpicklingError, ...); report all of them against the file.
  except Exception as e:  # pylint: disable=broad-except
    raise NpzError(
        f'{path}: cannot read {NPZ_KEY!r} (corrupt or truncated npz?): {type(e).__name__}: {e}'
    ) from e

  if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
    obj = obj.item()
  if not isinstance(obj, dict) or not all(
      isinstance(s, str) and isinstance(v, dict) and all(isinstance(k, str) for k in v)
      for s, v in obj.items()):
    raise NpzError(
        f'{path}: {NPZ_KEY!r} must be a dict subject -> {{action: array}}, got {type(obj)}.')
  return obj
