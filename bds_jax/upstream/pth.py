"""Reading PyTorch `.pth` state dicts without executing their pickles.

A `.pth` written by `torch.save` (PyTorch >= 1.6) is a zip archive: `<name>/data.pkl` pickles
the object, with every tensor's storage replaced by a persistent id
('storage', <dtype class>, <key>, <device>, <numel>) whose bytes are the file `<name>/data/<key>`.
Tensors are rebuilt by `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`.

`load_state_dict` reads one into {name: numpy array}:
- with PyTorch installed (optional), through `torch.load(weights_only=True)`, PyTorch's own
  restricted loader;
- otherwise (or with `use_torch=False`) through `RestrictedUnpickler` below, which resolves only
  OrderedDict, the tensor/parameter rebuild functions and the storage dtype markers; any other
  global (a crafted file calling `os.system`, say) is refused with an error naming the file.
  It never imports torch and never calls anything the file names.
The legacy (pre-1.6, non-zip) format, which the authors' PyTorch 1.3 wrote, is read too: four
pickles (magic number, protocol version, system info, the object with persistent ids
('storage', <dtype class>, <key>, <device>, <numel>, None)), a pickled list of storage keys, then
each storage as an int64 element count and its bytes. Its tensors are rebuilt once the
storages, which follow the object, are read.

Upstream saves with ignite's ModelCheckpoint as {'model': state_dict, 'optimizer': ...};
`load_state_dict` unwraps 'model' and says which entries it ignored.
"""

import collections
import logging
import os
import struct
import pickle
import zipfile

import numpy as np

from bds_jax import errors
from bds_jax import safe_pickle

log = logging.getLogger(__name__)

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c  # torch/serialization.py MAGIC_NUMBER
LEGACY_PROTOCOL = 1001
_MAX_DEPTH = 20  # nesting of the pickled object (a wrapped optimizer state is 4 deep)

# torch storage class name -> numpy dtype (little-endian, as torch.save writes on x86 and ARM).
_STORAGE_DTYPES = {
    'FloatStorage': '<f4', 'DoubleStorage': '<f8', 'HalfStorage': '<f2',
    'BFloat16Storage': '<u2',  # raw bits; converted below
    'LongStorage': '<i8', 'IntStorage': '<i4', 'ShortStorage': '<i2', 'CharStorage': 'i1',
    'ByteStorage': 'u1', 'BoolStorage': '?',
}


class UnsafePickleError(pickle.UnpicklingError, errors.InputError):
  """A .pth file asked for something other than tensors, dicts and plain values."""


class _StorageType:

  def __init__(self, name: str):
    self.name = name


class _Storage:
  """A typed storage's bytes, as a flat numpy array."""

  def __init__(self, array: np.ndarray, bfloat16: bool):
    self.array = array
    self.bfloat16 = bfloat16


class _PendingStorage:
  """A legacy storage whose bytes follow the pickled object: its key, dtype and size."""

  def __init__(self, key: str, kind: str, numel: int):
    self.key, self.kind, self.numel = key, kind, numel


class _PendingTensor:

  def __init__(self, storage, offset, size, stride):
    self.args = storage, offset, size, stride


def _ints(values, what: str) -> tuple[int, ...]:
  if not isinstance(values, (tuple, list)) or not all(
      isinstance(v, int) and not isinstance(v, bool) for v in values):
    raise UnsafePickleError(f'a tensor {what} that is not a tuple of integers: {values!r:.100}')
  return tuple(values)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
  """A tensor as a copy of its view into `storage`; the view is checked to lie inside the
  storage (offset, sizes and strides, as torch checks them) before any is made."""
  del requires_grad, backward_hooks, metadata
  if isinstance(storage, _PendingStorage):  # legacy format: the bytes come after the object
    return _PendingTensor(storage, storage_offset, size, stride)
  if not isinstance(storage, _Storage):
    raise UnsafePickleError('a tensor whose storage is not a storage record')
  flat = storage.array
  (offset,), size, stride = _ints((storage_offset,), 'offset'), _ints(size, 'size'), _ints(
      stride, 'stride')
  numel = int(np.prod(size, dtype=object)) if size else 1
  if (len(size) != len(stride) or offset < 0 or min(size + stride, default=0) < 0
      or offset + (numel > 0) > flat.size
      or (numel and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= flat.size)
      or numel > flat.size):
    # numel > storage: overlapping strides (an expanded view), which a state dict never holds.
    raise UnsafePickleError(f'a tensor of size {size} and stride {stride} at offset {offset} '
                            f'does not fit its storage ({flat.size} elements)')
  if not numel:
    return np.zeros(size, flat.dtype)
  stride = tuple(s if n > 1 else 0 for n, s in zip(size, stride))  # unused strides: any value
  out = np.lib.stride_tricks.as_strided(flat[offset:], size,
                                        tuple(s * flat.itemsize for s in stride)).copy()
  if storage.bfloat16:  # bfloat16 bits are the top half of a float32
    out = (out.astype(np.uint32) << 16).view(np.float32)
  return out


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
  del requires_grad, backward_hooks
  return data


# (The functions are wrapped so that a BUILD on them cannot set their attributes.)
_ALLOWED = {
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('torch._utils', '_rebuild_tensor_v2'): safe_pickle.Global(_rebuild_tensor_v2),
    ('torch._utils', '_rebuild_parameter'): safe_pickle.Global(_rebuild_parameter),
}


class RestrictedUnpickler(safe_pickle.HardenedUnpickler):
  """Unpickles a torch `data.pkl`, building numpy arrays; refuses every other global."""

  def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, path: str):
    super().__init__(data)
    self._archive, self._prefix, self._path = archive, prefix, path

  def find_class(self, module, name):
    if (module, name) in _ALLOWED:
      return _ALLOWED[(module, name)]
    if module == 'torch' and name in _STORAGE_DTYPES:
      return _StorageType(name)
    raise UnsafePickleError(
        f'{self._path}: refused to load {module}.{name}. A PyTorch state dict holds only '
        'tensors, dicts and plain values; this file asks for code to run. Do not use it, or '
        'inspect it with PyTorch in a sandbox.')

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == 'storage'
            and isinstance(pid[1], _StorageType)):
      raise UnsafePickleError(f'{self._path}: unexpected persistent id {pid!r}.')
    _, kind, key, _, numel = pid
    try:
      raw = self._archive.read(f'{self._prefix}/data/{key}')
    except KeyError as e:
      raise ValueError(f'{self._path}: storage {key} is missing from the archive (a truncated '
                       'or damaged file?).') from e
    dtype = np.dtype(_STORAGE_DTYPES[kind.name])
    if len(raw) != int(numel) * dtype.itemsize:
      raise ValueError(f'{self._path}: storage {key} has {len(raw)} bytes, expected '
                       f'{int(numel) * dtype.itemsize} ({numel} x {dtype}); a damaged file?')
    return _Storage(np.frombuffer(raw, dtype), kind.name == 'BFloat16Storage')


def _read_restricted(path: str):
  if not zipfile.is_zipfile(path):
    with open(path, 'rb') as f:
      return _read_legacy(path, f.read())
  with zipfile.ZipFile(path) as archive:
    pkl = [n for n in archive.namelist() if n.endswith('/data.pkl') and n.count('/') == 1]
    if len(pkl) != 1:
      raise ValueError(f'{path}: expected one <name>/data.pkl in the archive, found {pkl}.')
    prefix = pkl[0].split('/')[0]
    order = archive.read(f'{prefix}/byteorder').decode() if (
        f'{prefix}/byteorder' in archive.namelist()) else 'little'
    if order != 'little':
      raise ValueError(f'{path}: big-endian tensors are not supported.')
    return RestrictedUnpickler(archive.read(pkl[0]), archive, prefix, path).load()


class _LegacyUnpickler(safe_pickle.HardenedUnpickler):
  """The pickles of a legacy file, one after another, with the same globals allowed."""

  def __init__(self, data: bytes, path: str):
    super().__init__(data)
    self._path = path
    self.storages: dict[str, _PendingStorage] = {}

  find_class = RestrictedUnpickler.find_class

  def next(self):
    self.memo = {}
    return self.load()

  def offset(self) -> int:
    return self._file_read.__self__.tell()  # the in-memory file's position

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == 'storage'
            and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)
            and isinstance(pid[4], int) and pid[4] >= 0):
      raise UnsafePickleError(f'{self._path}: unexpected persistent id {pid!r:.200}.')
    _, kind, key, _, numel, view = pid
    if view is not None:
      raise ValueError(f'{self._path}: storage {key} is a view of another storage, which '
                       'a state dict saved by PyTorch 1.x does not hold; a damaged file?')
    known = self.storages.setdefault(key, _PendingStorage(key, kind.name, numel))
    if (known.kind, known.numel) != (kind.name, numel):
      raise ValueError(f'{self._path}: storage {key} is declared twice, differently.')
    return known


def _finish(obj, storages: dict, path: str, depth: int = 0):
  """Replaces the legacy file's pending tensors by arrays, in dicts, lists and tuples."""
  if depth > _MAX_DEPTH:
    raise ValueError(f'{path}: nested more than {_MAX_DEPTH} deep; not a state dict.')
  if isinstance(obj, _PendingTensor):
    pending, offset, size, stride = obj.args
    return _rebuild_tensor_v2(storages[pending.key], offset, size, stride)
  if isinstance(obj, dict):
    for k in list(obj):
      obj[k] = _finish(obj[k], storages, path, depth + 1)
    return obj
  if isinstance(obj, (list, tuple)):
    out = [_finish(v, storages, path, depth + 1) for v in obj]
    return out if isinstance(obj, list) else tuple(out)
  return obj


def _read_legacy(path: str, data: bytes):
  u = _LegacyUnpickler(data, path)
  if u.next() != LEGACY_MAGIC:
    raise ValueError(f'{path} is neither a zip-format nor a legacy PyTorch file.')
  version, info = u.next(), u.next()
  if version != LEGACY_PROTOCOL:
    raise ValueError(f'{path}: legacy PyTorch protocol {version!r}; only {LEGACY_PROTOCOL} is '
                     'known.')
  if not isinstance(info, dict) or not info.get('little_endian', False):
    raise ValueError(f'{path}: big-endian tensors are not supported.')
  obj, keys = u.next(), u.next()
  if not isinstance(keys, list) or sorted(map(str, keys)) != sorted(u.storages):
    raise ValueError(f'{path}: its storage list does not match the storages it uses; a '
                     'damaged file?')
  pos, storages = u.offset(), {}
  for key in keys:
    pending = u.storages[key]
    dtype = np.dtype(_STORAGE_DTYPES[pending.kind])
    if pos + 8 > len(data):
      raise ValueError(f'{path}: storage {key} is missing (the file ends at byte {len(data)}; '
                       'truncated?).')
    numel, = struct.unpack('<q', data[pos:pos + 8])
    end = pos + 8 + numel * dtype.itemsize
    if numel != pending.numel or end > len(data):
      raise ValueError(f'{path}: storage {key} says {numel} elements where {pending.numel} '
                       f'were declared, or runs past the end; a truncated or damaged file?')
    storages[key] = _Storage(np.frombuffer(data, dtype, numel, pos + 8),
                             pending.kind == 'BFloat16Storage')
    pos = end
  return _finish(obj, storages, path)


def _read_with_torch(path: str):
  import torch  # pylint: disable=g-import-not-at-top

  def numpy(obj, name='', depth=0):
    if depth > _MAX_DEPTH:
      raise ValueError(f'{path}: nested more than {_MAX_DEPTH} deep; not a state dict.')
    if isinstance(obj, torch.Tensor):  # torch accepts these views; a state dict never holds one
      elems = obj.untyped_storage().nbytes() // obj.element_size()
      if obj.numel() > elems or obj.storage_offset() + (obj.numel() > 0) > elems:
        raise UnsafePickleError(f'tensor {name} of size {tuple(obj.shape)} and stride '
                                f'{obj.stride()} at offset {obj.storage_offset()} does not fit '
                                f'its storage ({elems} elements)')
      return (obj.detach().float() if obj.dtype == torch.bfloat16 else obj.detach()).numpy()
    if isinstance(obj, dict):
      return type(obj)((k, numpy(v, k, depth + 1)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
      return type(obj)(numpy(v, name, depth + 1) for v in obj)
    return obj

  return numpy(torch.load(path, map_location='cpu', weights_only=True))


def _torch_available() -> bool:
  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import
    return True
  except ImportError:
    return False


def _unwrap(obj, path: str):
  """An ignite checkpoint {'model': state_dict, 'optimizer': ...}: its model's state dict."""
  if (isinstance(obj, dict) and isinstance(obj.get('model'), dict)
      and not isinstance(obj['model'], np.ndarray)):
    ignored = sorted(str(k) for k in obj if k != 'model')
    log.info('%s: an ignite checkpoint; reading its "model" entry%s.', path,
             f' (ignored: {", ".join(ignored)})' if ignored else '')
    return obj['model']
  return obj


def load_state_dict(path: str, use_torch: bool | None = None) -> dict[str, np.ndarray]:
  """{name: array} of a `.pth` state dict (see module docstring). None: torch if installed."""
  path = str(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'PyTorch checkpoint {path} does not exist.')
  if use_torch is None:
    use_torch = _torch_available()
  try:
    obj = _read_with_torch(path) if use_torch else _read_restricted(path)
  except (FileNotFoundError, PermissionError, IsADirectoryError):
    raise
  except pickle.UnpicklingError as e:  # refused (ours or torch's weights_only loader)
    msg = str(e) if isinstance(e, UnsafePickleError) else f'refused by the safe loader: {e}'
    raise UnsafePickleError(msg if path in msg else f'{path}: {msg}') from None
  # A truncated or damaged archive fails in many ways (BadZipFile, OSError, zlib.error,
  # EOFError, struct.error, TypeError from a malformed call, torch's RuntimeError, ...).
  except Exception as e:  # pylint: disable=broad-except
    msg = f'{type(e).__name__}: {e}'[:400]
    raise errors.InputError(msg if path in msg and isinstance(e, ValueError) else
                     f'{path}: cannot read this PyTorch file (truncated or damaged?): {msg}'
                     ) from e
  obj = _unwrap(obj, path)
  if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
    raise errors.InputError(f'{path} does not hold a state dict (a dict of named tensors), but '
                            f'a {type(obj).__name__}.')
  bad = sorted(k for k, v in obj.items() if not isinstance(v, np.ndarray))
  if bad:
    hint = (' It looks like an optimizer state: convert the <prefix>_model_<N>.pth beside it.'
            if {'state', 'param_groups'} <= set(obj) else '')
    raise errors.InputError(f'{path}: entries that are not tensors: {bad}.{hint}')
  return dict(obj)
