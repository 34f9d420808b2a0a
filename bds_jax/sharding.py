"""Data parallelism with jax.sharding: one 'data' mesh axis over every device of every host.

Parameters and optimizer state are replicated (P()), batches are split along their first axis
(P('data')). Each process feeds only its own slice of the global batch.
"""

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
