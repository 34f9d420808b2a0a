"""Data parallelism with jax.sharding: one 'data' mesh axis over every device of every host.

Parameters and optimizer state are replicated (P()), batches are split along their first axis
(P('data')). Each process feeds only its own slice of the global batch.
"""

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P


def make_mesh() -> jax.sharding.Mesh:
  # Auto axes: XLA propagates shardings through the step (explicit mode would require
  # annotating every contraction over the batch axis).
  return jax.make_mesh((jax.device_count(),), ('data',), axis_types=(AxisType.Auto,))


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh) -> NamedSharding:
  return NamedSharding(mesh, P('data'))


def per_process_batch_size(global_batch: int) -> int:
  if global_batch % jax.device_count():
    raise ValueError(f'data.batch_size={global_batch} must be divisible by the number of '
                     f'devices ({jax.device_count()}).')
  return global_batch // jax.process_count()


def to_device_batch(local_batch: dict, sharding: NamedSharding) -> dict:
  """This process's numpy batch -> global jax.Arrays sharded over the data axis."""
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in local_batch.items()}


def local_slice(global_batch: dict) -> dict:
  """This process's part of a batch that every process holds in full (fixed eval sets)."""
  n = len(next(iter(global_batch.values())))
  per = n // jax.process_count()
  i = jax.process_index()
  return {k: v[i * per:(i + 1) * per] for k, v in global_batch.items()}


def host_local_copy(tree):
  """A numpy copy of replicated arrays from this process's first shard (works multi-host)."""
  return jax.tree.map(lambda a: np.asarray(a.addressable_data(0)), tree)
