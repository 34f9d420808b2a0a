"""Reading pickles from data files without running them, and without trusting their bytes.

A pickle is a program: `pickle.load` calls whatever callables it names (`os.system` included).
Data releases still ship pickles (Human3.6M's `data_3d_h36m.npz`, DeepFashion's and Market's
`index.p`), so every pickle bds_jax reads goes through `load`, which builds dicts, lists,
tuples, strings, bytes, numbers, booleans, None and NumPy arrays, and nothing else.

Allowing NumPy's own reconstruction functions is not enough: a pickle that uses only
`numpy.dtype` and `_reconstruct` can build a structured dtype and then BUILD it into one with an
object field (`dtype.__setstate__`), so that bytes it chose are read as object pointers (a
segfault at an address of its choosing). So no NumPy callable is ever handed to the unpickler.
The globals a pickled array names resolve to the placeholders below; their arguments and BUILD
states are checked against the one shape NumPy writes for a plain array, and the array is then
made here, with `np.frombuffer` of a plain (boolean, integer, float, complex or fixed-width
string) dtype and a byte count that matches its shape. An object array is only ever filled
from a pickled list of objects this module built itself (that is how `np.save` stores the
npz's dict), never from bytes. Any other global, BUILD state or shape is refused with
`UnsafePickleError`; a damaged pickle is a `DamagedPickleError`; both are ValueErrors naming
the file, and nothing else escapes `load`.
"""

import io
import pickle
import re
import struct

import numpy as np

from bds_jax import errors

ALLOWED = 'dicts, lists, strings, numbers and NumPy arrays'
# Plain dtype names as NumPy pickles them ('f8', 'b1', 'U5', 'O8', ...): fixed-size numbers,
# booleans, fixed-width strings and (only with list data) objects. Structured ('V'), datetime
# and anything else are refused.
_PLAIN_DTYPE = re.compile(r'(?:[biufc]\d{1,2}|[US]\d{1,7}|O\d?)')
_BYTEORDERS = ('<', '>', '|', '=')
_MAX_DEPTH = 64  # data files nest a few levels; deeper is refused, not recursed into


class UnsafePickleError(errors.InputError):
  """The pickle asked to construct something a data file never needs (possibly malicious)."""


class DamagedPickleError(errors.InputError):
  """The pickle is truncated, corrupt, or not a pickle."""


class _Refusal(pickle.UnpicklingError):
  """Raised inside the unpickler; `load` turns it into UnsafePickleError with the file's name."""


class _DType:
  """`numpy.dtype(name, align, copy)` then BUILD(state): a plain dtype, checked."""
  __slots__ = ('dtype', 'built')

  def __init__(self, name, align=False, copy=True):
    del copy
    if isinstance(name, bytes):
      name = name.decode('latin1')
    if not isinstance(name, str) or not _PLAIN_DTYPE.fullmatch(name) or align not in (0, 1):
      raise _Refusal(f'a NumPy dtype {name!r}; only plain numbers, booleans and strings')
    self.dtype = np.dtype(name)
    self.built = False

  def __setstate__(self, state):
    # NumPy writes (3, byteorder, None, None, None, elsize, alignment, flags) for a plain dtype;
    # subarrays, field names and fields (the structured-dtype attack) must all be None.
    if (self.built or not isinstance(state, tuple) or len(state) != 8 or state[0] != 3
        or state[1] not in _BYTEORDERS or state[2:5] != (None, None, None)
        or not all(type(x) is int for x in state[5:])):
      raise _Refusal(f'a dtype state {state!r:.200}')
    dtype = self.dtype.newbyteorder(state[1]) if state[1] in '<>' else self.dtype
    if state[5] != (dtype.itemsize if dtype.kind in 'US' else -1) or not dtype.itemsize:
      raise _Refusal(f'a {dtype} dtype with element size {state[5]}')
    self.dtype, self.built = dtype, True

  def get(self) -> np.dtype:
    if not self.dtype.itemsize:
      raise _Refusal('a string dtype without a size')
    return self.dtype


def _plain(dtype) -> np.dtype:
  if not isinstance(dtype, _DType):
    raise _Refusal(f'an array whose dtype is a {type(dtype).__name__}')
  dtype = dtype.get()
  if dtype.kind == 'O':
    raise _Refusal('object data from raw bytes')
  return dtype


def _count(shape) -> int:
  if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
    raise _Refusal(f'an array shape {shape!r:.100}')
  count = 1
  for n in shape:
    count *= n
  return count


def _from_bytes(raw, dtype: np.dtype, shape: tuple, fortran: bool) -> np.ndarray:
  if isinstance(raw, str):  # Python 2 buffers arrive as latin1 text
    raw = raw.encode('latin1')
  if not isinstance(raw, (bytes, bytearray, pickle.PickleBuffer)):
    raise _Refusal(f'array data of type {type(raw).__name__}')
  raw = bytes(raw)
  if len(raw) != _count(shape) * dtype.itemsize:
    raise _Refusal(f'{len(raw)} bytes for a {dtype} array of shape {shape}')
  if dtype.kind == 'U':  # UCS-4 code points past U+10FFFF break every read of the text
    points = np.frombuffer(raw, dtype.byteorder.replace('=', '<').replace('|', '<') + 'u4')
    if points.size and points.max() > 0x10FFFF:
      raise _Refusal(f'text with an invalid code point ({int(points.max()):#x})')
  if dtype.kind == 'b':  # any non-zero byte is True; never a bool byte other than 0 or 1
    return (np.frombuffer(raw, np.uint8) != 0).reshape(shape, order='F' if fortran else 'C')
  return np.frombuffer(raw, dtype).reshape(shape, order='F' if fortran else 'C').copy()


class _NDArrayClass:
  """What the global `numpy.ndarray` resolves to: a marker for `_reconstruct`'s argument."""
  __slots__ = ()


_NDARRAY = _NDArrayClass()


class _Array:
  """`_reconstruct(ndarray, (0,), b'b')` then BUILD((version,) shape, dtype, fortran, data)."""
  __slots__ = ('shape', 'dtype', 'fortran', 'data', 'built')

  def __init__(self, cls, shape, typecode):
    del typecode
    if cls is not _NDARRAY or shape != (0,):
      raise _Refusal('an array subclass or an unusual array reconstruction')
    self.built = False

  def __setstate__(self, state):
    if self.built or not isinstance(state, tuple) or len(state) not in (4, 5):
      raise _Refusal(f'an array state {state!r:.200}')
    if len(state) == 5:
      if state[0] != 1:
        raise _Refusal(f'array state version {state[0]!r}')
      state = state[1:]
    shape, dtype, fortran, data = state
    if not isinstance(dtype, _DType) or fortran not in (0, 1):
      raise _Refusal(f'an array state {state!r:.200}')
    count = _count(shape)
    if dtype.get().kind == 'O':
      if not isinstance(data, list) or len(data) != count:
        raise _Refusal(f'an object array of shape {shape} without a list of {count} items')
      self.data = data
    else:
      self.data = _from_bytes(data, _plain(dtype), shape, bool(fortran))
    self.shape, self.dtype, self.fortran, self.built = shape, dtype, bool(fortran), True


def _scalar(dtype, raw):
  """`numpy.core.multiarray.scalar(dtype, bytes)`: a NumPy scalar of a plain dtype."""
  dtype = _plain(dtype)
  return _from_bytes(raw, dtype, (), False)[()]


def _frombuffer(buf, dtype, shape, order):
  """`numpy._core.numeric._frombuffer`, as protocol-5 pickles store contiguous arrays."""
  if order not in ('C', 'F'):
    raise _Refusal(f'array order {order!r}')
  return _from_bytes(buf, _plain(dtype), shape, order == 'F')


def _latin1(text, encoding='latin1'):
  """`_codecs.encode(text, 'latin1')`: how Python 3 writes bytes in protocol 2."""
  if not isinstance(text, str) or encoding != 'latin1':
    raise _Refusal(f'_codecs.encode of a {type(text).__name__} to {encoding!r:.20}')
  return text.encode('latin1')


def _ordered_dict(items=()):
  # A plain dict (ordered); BUILD on it fails, where an OrderedDict would take attributes.
  return dict(items)


class Global:
  """What an allowed global resolves to: a callable that takes no attributes, so that BUILD
  on it (which would set attributes of a function or class of this module) is refused."""
  __slots__ = ('_make',)

  def __init__(self, make):
    self._make = make

  def __call__(self, *args):
    return self._make(*args)

  def __setstate__(self, state):
    raise _Refusal('BUILD on a function')


_GLOBALS = {
    ('numpy', 'ndarray'): _NDARRAY,
    ('numpy', 'dtype'): Global(_DType),
    ('collections', 'OrderedDict'): Global(_ordered_dict),
    ('_codecs', 'encode'): Global(_latin1),
}
for _core in ('numpy.core', 'numpy._core'):  # renamed in NumPy 2; both spellings occur
  _GLOBALS.update({(f'{_core}.multiarray', '_reconstruct'): Global(_Array),
                   (f'{_core}.multiarray', 'scalar'): Global(_scalar),
                   (f'{_core}.numeric', '_frombuffer'): Global(_frombuffer)})


# The pure-Python unpickler, not the C one: its memo is a dict, where the C unpickler sizes an
# array by the largest memo index a file names (a few bytes ask for gigabytes), and nothing it
# does with hostile opcodes can touch memory outside Python objects.
class HardenedUnpickler(pickle._Unpickler):  # pylint: disable=protected-access
  """The base of every restricted unpickler here (and of bds_jax.upstream.pth's): reads a
  pickle held in memory, so that no length a hostile file declares sizes a buffer."""

  def __init__(self, data: bytes, **kwargs):
    super().__init__(io.BytesIO(data), **kwargs)
    self._size = len(data)

  def _load_bytearray8(self):
    # The base class allocates the declared length before reading: 20 bytes could ask for
    # gigabytes. Every other length-prefixed read is bounded by the in-memory file.
    size, = struct.unpack('<Q', self.read(8))
    if size > self._size:
      raise pickle.UnpicklingError(f'a bytearray of {size} bytes in a {self._size}-byte file')
    self.append(bytearray(self.read(size)))

  dispatch = dict(pickle._Unpickler.dispatch)  # pylint: disable=protected-access
  dispatch[pickle.BYTEARRAY8[0]] = _load_bytearray8


class _RestrictedUnpickler(HardenedUnpickler):

  def __init__(self, data: bytes):
    # latin1 lets Python-2-era array buffers load, as np.load recommends.
    super().__init__(data, encoding='latin1')

  def find_class(self, module, name):
    found = _GLOBALS.get((module, name))
    if found is None:
      raise _Refusal(f'{module}.{name}')
    return found

  def persistent_load(self, pid):
    raise _Refusal(f'a persistent id ({pid!r:.100})')


_SCALARS = (str, bytes, bytearray, int, float, complex, bool, type(None), np.generic)


def _resolve(obj, done: dict, depth: int = 0):
  """Replaces placeholders by what they stand for, checking every value is plain data."""
  if isinstance(obj, _SCALARS):
    return obj
  if isinstance(obj, np.ndarray):
    return obj  # made by _from_bytes: plain dtype
  if id(obj) in done:
    if done[id(obj)][0] is None:
      raise _Refusal('an object array that contains itself')
    return done[id(obj)][0]
  if depth > _MAX_DEPTH:
    raise _Refusal(f'data nested more than {_MAX_DEPTH} levels deep')
  sub = lambda x: _resolve(x, done, depth + 1)
  # `done` keeps `obj` alive, so an id is never reused by another object during the walk.
  if isinstance(obj, list):
    out = done[id(obj)] = ([], obj)
    out[0].extend(sub(x) for x in obj)
  elif isinstance(obj, dict):
    out = done[id(obj)] = ({}, obj)
    for k, v in obj.items():
      key = sub(k)
      if not isinstance(key, (str, bytes, int, float, bool, type(None), tuple)):
        raise _Refusal(f'a dict key of type {type(key).__name__}')
      out[0][key] = sub(v)
  elif isinstance(obj, (tuple, set, frozenset)):
    # A tuple or set holds itself only through a list or dict, which are resolved first.
    out = done[id(obj)] = (type(obj)(sub(x) for x in obj), obj)
  elif isinstance(obj, _DType):
    out = done[id(obj)] = (obj.get(), obj)
  elif isinstance(obj, _Array):
    if not obj.built:
      raise _Refusal('an array that was never given its data')
    if isinstance(obj.data, np.ndarray):
      out = done[id(obj)] = (obj.data, obj)
    else:  # an object array: its items (in C order, as NumPy pickles them), resolved
      done[id(obj)] = (None, obj)  # in progress: an array that holds itself is refused
      array = np.empty(len(obj.data), object)
      for i, x in enumerate(obj.data):
        array[i] = sub(x)
      out = done[id(obj)] = (array.reshape(obj.shape), obj)
  else:
    raise _Refusal(f'a {type(obj).__name__}')
  return out[0]


def load(file, source: str, hint: str = 'The file is not genuine and may be malicious.',
         what: str = 'it'):
  """Unpickles one object from a binary file object, allowing only plain data (see module).

  Args:
    file: a readable binary file object positioned at the pickle.
    source: the file's name, for error messages.
    hint: a sentence appended to the refusal (what the genuine file is).
    what: what the file should be, for the damaged-file message.

  Raises:
    UnsafePickleError: the pickle asks for anything but plain data (see module).
    DamagedPickleError: the pickle is truncated or corrupt.
  """
  try:
    # Read whole, so that no length a hostile file declares sizes a read buffer.
    return _resolve(_RestrictedUnpickler(file.read()).load(), {})
  except _Refusal as e:
    raise UnsafePickleError(f'{source}: refusing to unpickle {e}; this file may only hold '
                            f'{ALLOWED}. {hint}'.strip()) from None
  # Truncated or corrupt pickles fail in many ways (EOFError, UnpicklingError, struct.error,
  # TypeError from a wrong call, RecursionError, MemoryError, ...); all are reported
  # against the file.
  except Exception as e:  # pylint: disable=broad-except
    raise DamagedPickleError(f'{source}: cannot read {what} (truncated or not a pickle?): '
                             f'{type(e).__name__}: {e}'[:500]) from e


def load_path(path, what: str) -> object:
  """Unpickles the file at `path`; every failure is a ValueError naming the file (or
  FileNotFoundError / PermissionError).

  Args:
    path: the pickle file.
    what: what the file should be (e.g. "DeepFashion's index.p"), for messages.
  """
  try:
    with open(path, 'rb') as f:
      return load(f, str(path), f'It is not a genuine {what} and may be malicious.', what)
  except IsADirectoryError as e:
    raise errors.InputError(f'{path} is a directory; expected {what}.') from e
