"""Hostile pickles: crafted NumPy reconstructions, mutated real-format pickles and crafted
PyTorch tensors are refused with one clear error, in subprocesses where a crash could occur."""

import io
import os
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import pickle_fuzz
from bds_jax import safe_pickle
from bds_jax.upstream import pth

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, 'tests')


def _run(code: str) -> subprocess.CompletedProcess:
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, TESTS]))
  return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env,
                        timeout=300, check=False)


def test_mutated_real_format_pickles_never_crash():
  """A few thousand mutations of index.p and npz pickles (protocols 2-5) and the crafted dtype
  attacks: each returns plain data or raises the project's ValueError; a segfault, a non-plain
  result or any other exception fails the subprocess."""
  out = _run('import pickle_fuzz; pickle_fuzz.main(3000, 7)')
  assert out.returncode == 0, (out.returncode, out.stdout[-2000:], out.stderr[-2000:])
  loaded, refused = map(int, out.stdout.split()[1:3])
  assert loaded > 100 and refused > 1000, out.stdout  # both paths were exercised


def test_crafted_dtype_pickles_are_refused_through_every_reader(tmp_path):
  """The dtype BUILD attacks (an array's chosen bytes re-read as object pointers; from a
  structured and from a plain array) through read_index (DeepFashion's index.p) and the
  Human3.6M npz, in one subprocess, where a segfault fails the test rather than pytest."""
  paths = []
  for attack, raw in enumerate(pickle_fuzz.dtype_attacks()):
    (tmp_path / str(attack)).mkdir()
    index = tmp_path / str(attack) / 'index.p'
    index.write_bytes(raw)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {'descr': '|O', 'fortran_order': False,
                                                  'shape': ()})
    npz = tmp_path / str(attack) / 'data_3d_h36m.npz'
    with zipfile.ZipFile(npz, 'w') as zf:
      zf.writestr('positions_3d.npy', header.getvalue() + raw)
    paths.append((str(index), str(npz)))
  code = f'''
from bds_jax.imaging import index_images
from bds_jax.h36m import npz
for index, npz_path in {paths!r}:
  for read in (lambda: index_images.read_index(index, index_images.DEEPFASHION),
               lambda: npz.load_npz_positions(npz_path)):
    try:
      read()
      print('LOADED')
    except ValueError as e:
      print('REFUSED', e)
'''
  out = _run(code)
  assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
  lines = out.stdout.strip().splitlines()
  assert len(lines) == 4 and all(line.startswith('REFUSED') for line in lines), lines
  for line in lines[0::2]:
    assert 'index.p: refusing to unpickle' in line and 'malicious' in line
  for line in lines[1::2]:
    assert 'data_3d_h36m.npz (positions_3d): refusing to unpickle' in line


@pytest.mark.parametrize('protocol', [2, 3, 4, 5])
def test_real_formats_load_as_numpy_does(protocol):
  for raw in pickle_fuzz.real_pickles():
    obj = pickle.loads(raw)
    raw = pickle.dumps(obj, protocol)
    got = safe_pickle.load(io.BytesIO(raw), 'mem')
    if isinstance(obj, np.ndarray):  # the npz's 0-d object array around the dict
      assert got.dtype == object and got.shape == ()
      obj, got = obj.item(), got.item()
      for s in obj:
        for a in obj[s]:
          np.testing.assert_array_equal(got[s][a], obj[s][a])
          assert got[s][a].dtype == obj[s][a].dtype
      continue
    assert got.keys() == obj.keys() and got['imgs'] == obj['imgs']
    for key in ('train', 'names', 'ids'):
      np.testing.assert_array_equal(got[key], obj[key])
      assert got[key].dtype == obj[key].dtype
    for a, b in zip(got['joints'], obj['joints']):
      np.testing.assert_array_equal(a, b)


def test_declared_lengths_do_not_size_allocations():
  """A 20-byte protocol-5 pickle declaring a 2**40-byte bytearray, and a memo index of 2**31
  (which the C unpickler would size an array by), are damaged files, refused at once."""
  with pytest.raises(safe_pickle.DamagedPickleError, match='bytearray of 1099511627776 bytes'):
    safe_pickle.load(io.BytesIO(b'\x80\x05\x96' + struct.pack('<Q', 2**40) + b'xx.'), 'mem')
  memo = b'\x80\x04N' + b'r' + struct.pack('<I', 2**31 - 1) + b'.'  # None, memoised, STOP
  assert safe_pickle.load(io.BytesIO(memo), 'mem') is None


def test_build_on_an_allowed_function_is_refused():
  # collections.OrderedDict (a plain dict here), then BUILD with a slot state on the global
  # itself: it would set attributes of this module's function.
  raw = (b'\x80\x02ccollections\nOrderedDict\n'
         + b'N}X\x0c\x00\x00\x00__defaults__)s\x86b.')
  with pytest.raises(safe_pickle.UnsafePickleError, match='BUILD on a function'):
    safe_pickle.load(io.BytesIO(raw), 'mem')


def _text(x: str) -> bytes:
  return b'X' + struct.pack('<I', len(x.encode())) + x.encode()


def _ints(values) -> bytes:
  return b'(' + b''.join(b'\x8a\x08' + struct.pack('<q', v) for v in values) + b't'


def _tensor_pth(path, offset, size, stride, numel=4):
  """A zip .pth whose tensor 'w' is a view (offset, size, stride) of a numel-float storage."""
  storage = (b'(' + _text('storage') + b'ctorch\nFloatStorage\n' + _text('0') + _text('cpu')
             + b'K' + bytes([numel]) + b'tQ')
  pkl = (b'\x80\x02}' + _text('w') + b'ctorch._utils\n_rebuild_tensor_v2\n(' + storage
         + b'\x8a\x08' + struct.pack('<q', offset) + _ints(size) + _ints(stride)
         + b'\x89ccollections\nOrderedDict\n)RtRs.')
  with zipfile.ZipFile(path, 'w') as z:
    z.writestr('archive/data.pkl', pkl)
    z.writestr('archive/data/0', np.arange(numel, dtype='<f4').tobytes())
    z.writestr('archive/version', '3\n')
  return str(path)


def test_pth_reader_reads_a_valid_crafted_view(tmp_path):
  path = _tensor_pth(tmp_path / 'ok.pth', 1, (2,), (2,))
  np.testing.assert_array_equal(pth.load_state_dict(path, use_torch=False)['w'], [1.0, 3.0])


BAD_VIEWS = {  # name: (offset, size, stride) of a tensor into a 4-element storage
    'offset-1000': (1000, (), ()), 'offset-1e9': (10**9, (), ()), 'offset-neg': (-1, (), ()),
    'size0-offset': (10**9, (0,), (1,)), 'size-neg': (0, (0, -3), (1, 1)),
    'stride0': (0, (10**6, 10**6), (0, 0)), 'past-end': (2, (2,), (2,)),
    'stride-neg': (0, (2,), (-1,)), 'rank-mismatch': (0, (2, 2), (1,))}


def test_pth_tensors_outside_their_storage_are_refused(tmp_path):
  """Checked before any view is made, with the restricted reader and (when installed)
  PyTorch's own loader, in one subprocess so that an out-of-bounds read fails the test."""
  paths = {name: _tensor_pth(tmp_path / f'{name}.pth', *view) for name, view in BAD_VIEWS.items()}
  code = f'''
from bds_jax.upstream import pth
try:
  import torch
  modes = (False, True)
except ImportError:
  modes = (False,)
for name, path in {paths!r}.items():
  for use_torch in modes:
    try:
      pth.load_state_dict(path, use_torch=use_torch)
      print('LOADED', name, use_torch)
    except ValueError as e:
      print('REFUSED', name, use_torch, e)
'''
  out = _run(code)
  assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
  lines = out.stdout.strip().splitlines()
  assert len(lines) >= len(BAD_VIEWS), lines
  for line in lines:
    name = line.split()[1]
    assert line.startswith('REFUSED') and f'{name}.pth' in line, line
    if ' False ' in line:  # ours says why
      assert 'does not fit its storage' in line or 'not a tuple of integers' in line, line
