"""Data parallelism with jax.sharding: one 'data' mesh axis over every device of every host.

Parameters and optimizer state are replicated (P()), batches are split along their first axis
(P('data')). Each process feeds only its own slice of the global batch. `batched` runs a model
over many host arrays in fixed-size batches: the one helper that evaluation and synthesis share.
"""

from typing import Callable, Iterator

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P


def make_mesh() -> jax.sharding.Mesh:
  # Auto axes: XLA propagates shardings through the step (explicit mode would require
  # annotating every contraction over the batch axis).
  return jax.make_mesh((jax.device_count(),), ('data',), axis_types=(AxisType.Auto,))


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh) -> NamedSharding:
  return NamedSharding(mesh, P('data'))


def per_process_batch_size(global_batch: int, field: str = 'data.batch_size') -> int:
  if global_batch % jax.device_count():
    raise ValueError(f'{field}={global_batch} must be divisible by the number of '
                     f'devices ({jax.device_count()}).')
  return global_batch // jax.process_count()


def to_device_batch(local_batch: dict, sharding: NamedSharding) -> dict:
  """This process's numpy batch -> global jax.Arrays sharded over the data axis.

  This is the batch's explicit host-to-device copy, so it is allowed under a transfer guard
  (with several processes JAX's assembly of the global array counts as implicit).
  """
  with jax.transfer_guard_host_to_device('allow'):
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
            for k, v in local_batch.items()}


def local_slice(global_batch: dict) -> dict:
  """This process's part of a batch that every process holds in full (fixed eval sets)."""
  n = len(next(iter(global_batch.values())))
  per = n // jax.process_count()
  i = jax.process_index()
  return {k: v[i * per:(i + 1) * per] for k, v in global_batch.items()}


def shard_batch(batch: dict, sharding: NamedSharding) -> dict:
  """A batch that every process holds in full -> global arrays sharded over the data axis."""
  return to_device_batch(local_slice(batch), sharding)


def host_local_copy(tree):
  """A numpy copy of replicated arrays from this process's first shard (works multi-host)."""
  return jax.tree.map(lambda a: jax.device_get(a.addressable_data(0)), tree)


def to_host(tree):
  """Numpy values of (global) arrays, on every process: replicated arrays from a local shard,
  sharded ones gathered across processes."""

  def get(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      if x.is_fully_replicated:
        return jax.device_get(x.addressable_data(0))
      return multihost_utils.process_allgather(x, tiled=True)
    return jax.device_get(x)

  return jax.tree.map(get, tree)


def device_batches(arrays: dict, batch_size: int, data_sharding=None,
                   pad: bool = False) -> Iterator[tuple[dict, int]]:
  """Fixed-size batches of host arrays (identical on every process) as device arrays.

  Yields (batch, n) with n the number of real rows. Batches are sharded over the data axis of
  `data_sharding`'s mesh (any number of devices and processes), or put on the default device
  when it is None. Shapes stay static: without `pad` the remainder is dropped; with it, the
  last batch repeats its last row to full size.
  """
  n = len(next(iter(arrays.values())))
  stop = n if pad else n - batch_size + 1
  for i in range(0, max(stop, 0), batch_size):
    chunk = {k: np.asarray(v[i:i + batch_size]) for k, v in arrays.items()}
    m = len(next(iter(chunk.values())))
    if m < batch_size:
      chunk = {k: np.concatenate([c, np.repeat(c[-1:], batch_size - m, axis=0)])
               for k, c in chunk.items()}
    if data_sharding is None:
      yield jax.device_put(chunk), m
    else:
      yield shard_batch(chunk, data_sharding), m


def batched(fn: Callable, arrays: tuple, batch_size: int, data_sharding=None):
  """fn(*chunk) over the leading axis in fixed-size sharded batches; host outputs, concatenated.

  Every output of fn must have the batch as its leading axis. Inputs are moved and outputs
  fetched explicitly, under jax.transfer_guard('disallow').
  """
  keys = [f'a{i}' for i in range(len(arrays))]
  outs = []
  with jax.transfer_guard('disallow'):
    for batch, m in device_batches(dict(zip(keys, arrays)), batch_size, data_sharding, pad=True):
      out = to_host(fn(*[batch[k] for k in keys]))
      outs.append(jax.tree.map(lambda x, m=m: np.asarray(x)[:m], out))
  return jax.tree.map(lambda *xs: np.concatenate(xs), *outs)
