"""Crafted and mutated pickles against bds_jax.safe_pickle, run as a script in a subprocess
(tests/test_safe_pickle.py) so that a segfault fails a test instead of killing pytest.

`python tests/pickle_fuzz.py N SEED` loads N mutations of real-format pickles (DeepFashion's
index.p, the npz's pickled dict, in protocols 2 to 5) and checks each either returns plain data
or raises the project's ValueError; it prints 'ok <loaded> <refused>' and exits 0.
"""

import io
import pickle
import pickletools
import sys

import numpy as np

from bds_jax import safe_pickle


def real_pickles() -> list[bytes]:
  rng = np.random.default_rng(0)
  index = {'imgs': [f'img/MEN/id_{i:08d}/01_{i}_front.jpg' for i in range(3)],
           'joints': [rng.uniform(-1, 1, (18, 2)).astype(np.float32) for _ in range(3)],
           'train': np.array([True, False, True]),
           'joint_order': ['cnose', 'cneck', 'rshoulder'],
           'names': np.array(['ab', 'c']), 'ids': np.arange(3, dtype=np.int64)}
  container = np.empty((), object)
  container[()] = {'S1': {'Walking 1': rng.normal(size=(4, 32, 3)).astype(np.float32)},
                   'S5': {'Sitting': np.asfortranarray(rng.normal(size=(2, 3, 3)))}}
  out = []
  for protocol in (2, 3, 4, 5):
    out += [pickle.dumps(index, protocol), pickle.dumps(container, protocol)]
  out.append(pickle.dumps(container, 3).replace(b'numpy._core.', b'numpy.core.'))
  return out


def _dtype_memo(raw: bytes) -> int:
  """The memo slot of the outermost dtype a protocol-3 array pickle builds."""
  ops = list(pickletools.genops(raw))
  at = next(i for i, (op, arg, _) in enumerate(ops) if op.name == 'GLOBAL'
            and arg == 'numpy dtype')
  at = next(i for i in range(at, len(ops)) if ops[i][0].name == 'REDUCE')
  return ops[at + 1][1]  # the BINPUT right after it


def dtype_attacks(address: int = 0x41414141) -> list[bytes]:
  """The issue's crafted pickles: an array whose 8 bytes the attacker chose, then BUILD on the
  memoised dtype with a state that makes the field an object (its bytes read as a PyObject*).
  One starts from a structured <i8 field, one from a plain int64 array."""
  out = []
  structured = (3, '|', None, ('a',), {'a': (np.dtype('O'), 0)}, 8, 8, 63)
  plain = (3, '|', None, None, None, -1, -1, 63)
  for dtype, state in ((np.dtype([('a', '<i8')]), structured), (np.dtype('<i8'), plain)):
    raw = pickle.dumps(np.frombuffer(np.int64(address).tobytes(), dtype), 3)
    state_ops = pickle.dumps(state, 3)[2:-1]  # without PROTO and STOP
    out.append(raw[:-1] + b'h' + bytes([_dtype_memo(raw)]) + state_ops + b'b0.')
  return out


def is_plain(obj, depth=0) -> bool:
  if depth > 80:
    return False
  if isinstance(obj, (str, bytes, bytearray, int, float, complex, bool, type(None))):
    return True
  if isinstance(obj, np.dtype):
    return obj.kind in 'biufcUSO' and not obj.fields
  if isinstance(obj, np.generic):
    return obj.dtype.kind in 'biufcUS'
  if isinstance(obj, np.ndarray):
    if obj.dtype.kind == 'O':
      return all(is_plain(x, depth + 1) for x in obj.reshape(-1))
    if obj.dtype.kind not in 'biufcUS' or obj.dtype.fields:
      return False
    obj.tolist()  # every element readable
    return True
  if isinstance(obj, (list, tuple, set, frozenset)):
    return all(is_plain(x, depth + 1) for x in obj)
  if isinstance(obj, dict):
    return all(is_plain(k, depth + 1) and is_plain(v, depth + 1) for k, v in obj.items())
  return False


def mutate(raw: bytes, rng: np.random.Generator) -> bytes:
  data = bytearray(raw)
  for _ in range(int(rng.integers(1, 4))):
    kind = int(rng.integers(5))
    at = int(rng.integers(len(data)))
    if kind == 0:  # flip a byte
      data[at] = int(rng.integers(256))
    elif kind == 1:  # delete a run
      del data[at:at + int(rng.integers(1, 9))]
    elif kind == 2:  # insert a random opcode
      data[at:at] = bytes([int(rng.choice(list(b'bhq0(tl}).sRNFJKMG\x85\x86\x87\x94')))])
    elif kind == 3:  # duplicate a run elsewhere
      start = int(rng.integers(len(data)))
      data[at:at] = data[start:start + int(rng.integers(1, 33))]
    else:  # change a length or count byte to an extreme
      data[at] = int(rng.choice([0, 1, 0x7f, 0x80, 0xff]))
    if not data:
      data = bytearray(b'.')
  return bytes(data)


def main(count: int, seed: int):
  rng = np.random.default_rng(seed)
  seeds = real_pickles() + dtype_attacks()
  loaded = refused = 0
  for i in range(count):
    raw = mutate(seeds[i % len(seeds)], rng) if i >= len(seeds) else seeds[i]
    try:
      obj = safe_pickle.load(io.BytesIO(raw), f'case {i}')
    except ValueError:  # UnsafePickleError or DamagedPickleError
      refused += 1
      continue
    if not is_plain(obj):
      print(f'case {i}: not plain data: {type(obj).__name__} from {raw!r}')
      sys.exit(1)
    loaded += 1
  print(f'ok {loaded} {refused}')


if __name__ == '__main__':
  main(int(sys.argv[1]), int(sys.argv[2]))
