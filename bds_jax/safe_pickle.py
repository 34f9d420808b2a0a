"""Reading pickles from data files without running them.

A pickle is a program: `pickle.load` calls whatever callables it names (`os.system` included).
Data releases still ship pickles (Human3.6M's `data_3d_h36m.npz`, DeepFashion's and Market's
`index.p`), so every pickle bds_jax reads goes through `loads`, whose unpickler can build
dicts, lists, tuples, strings, bytes, numbers, booleans, None and NumPy arrays, and nothing
else. A pickle that names any other global is refused with `UnsafePickleError` before anything
it names is called.
"""

import collections
import pickle

import numpy as np

ALLOWED = 'dicts, lists, strings, numbers and NumPy arrays'


class UnsafePickleError(ValueError):
  """The pickle asked to construct something a data file never needs (possibly malicious)."""


def _multiarray():
  try:
    from numpy._core import multiarray  # pylint: disable=g-import-not-at-top
  except ImportError:  # NumPy 1.x.
    from numpy.core import multiarray  # pylint: disable=g-import-not-at-top
  return multiarray


# The only globals a pickled NumPy array or scalar needs: ndarray.__reduce__ gives
# (_reconstruct, (ndarray, (0,), b'b'), state), a dtype reduces to numpy.dtype, and a NumPy
# scalar to (scalar, (dtype, bytes)). The module was renamed in NumPy 2, so both spellings are
# accepted. Everything else the allowed types need is built by opcodes, without globals.
# OrderedDict is a plain mapping that old index files may hold.
_reconstruct = lambda: _multiarray()._reconstruct  # pylint: disable=protected-access
_GLOBALS = {
    ('numpy._core.multiarray', '_reconstruct'): _reconstruct,
    ('numpy.core.multiarray', '_reconstruct'): _reconstruct,
    ('numpy._core.multiarray', 'scalar'): lambda: _multiarray().scalar,
    ('numpy.core.multiarray', 'scalar'): lambda: _multiarray().scalar,
    ('numpy', 'ndarray'): lambda: np.ndarray,
    ('numpy', 'dtype'): lambda: np.dtype,
    ('collections', 'OrderedDict'): lambda: collections.OrderedDict,
}


class _RestrictedUnpickler(pickle.Unpickler):

  def __init__(self, file, source: str, hint: str):
    # latin1 lets Python-2-era array buffers load, as np.load recommends.
    super().__init__(file, encoding='latin1')
    self._source = source
    self._hint = hint

  def find_class(self, module, name):
    make = _GLOBALS.get((module, name))
    if make is None:
      raise UnsafePickleError(
          f'{self._source}: refusing to unpickle {module}.{name}; this file may only hold '
          f'{ALLOWED}. {self._hint}'.strip())
    return make()

  def persistent_load(self, pid):
    raise UnsafePickleError(f'{self._source}: refusing a pickle persistent id ({pid!r}); this '
                            f'file may only hold {ALLOWED}. {self._hint}'.strip())


def load(file, source: str, hint: str = 'The file is not genuine and may be malicious.'):
  """Unpickles one object from a binary file object, allowing only plain data (see module).

  Args:
    file: a readable binary file object positioned at the pickle.
    source: the file's name, for error messages.
    hint: a sentence appended to the refusal (what the genuine file is).

  Raises:
    UnsafePickleError: the pickle names a callable or class outside the allowed set.
    Other exceptions of the unpickler (EOFError, UnpicklingError, ...) for damaged input;
    callers report those against the file.
  """
  return _RestrictedUnpickler(file, source, hint).load()


def load_path(path, what: str) -> object:
  """Unpickles the file at `path`; every failure is a ValueError naming the file.

  Args:
    path: the pickle file.
    what: what the file should be (e.g. "DeepFashion's index.p"), for messages.
  """
  try:
    with open(path, 'rb') as f:
      return load(f, str(path), f'It is not a genuine {what} and may be malicious.')
  except (UnsafePickleError, FileNotFoundError, PermissionError):
    raise
  # Truncated or corrupt pickles fail in many ways (EOFError, UnpicklingError, struct.error,
  # ValueError, ...); report them all against the file.
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'{path}: cannot read {what} (truncated or not a pickle?): '
                     f'{type(e).__name__}: {e}') from e
