"""grain input pipelines over `Windows`: shuffled training batches and fixed evaluation sets.

Training: window indices -> this process's shard -> shuffle (a new order every epoch) ->
repeat -> load window (+ paired window, seeded per element) -> batch. The resulting grain
iterator has a small, checkpointable state, so a resumed run continues with exactly the batch
an uninterrupted run would have drawn.
"""

import functools

import grain
import jax
import numpy as np

from bds_jax.data.windows import Windows


def _load(windows: Windows, paired: bool, index, rng):
  return windows.item(int(index), rng, paired)


def sharded_batches(num_items: int, load, batch_size: int, seed: int, source: str, unit: str,
                    shard_index: int | None = None, shard_count: int | None = None,
                    num_threads: int = 2, prefetch: int = 8) -> grain.IterDataset:
  """The training stream of every trainer: item indices -> this process's shard -> shuffle
  (a new order every epoch) -> repeat -> `load(index, rng)` (seeded per element) -> batch.

  `source` ('<dataset>/<split>') and `unit` ('windows', 'frames') word the error raised when
  this process's shard holds less than one batch.
  """
  shard_index = jax.process_index() if shard_index is None else shard_index
  shard_count = jax.process_count() if shard_count is None else shard_count
  ds = grain.MapDataset.range(num_items)[shard_index::shard_count]
  if len(ds) < batch_size:
    raise ValueError(
        f'{source} has {len(ds)} {unit} for this process, fewer than one batch of '
        f'{batch_size}: lower data.batch_size or use more data.')
  ds = ds.shuffle(seed=seed).repeat(None)
  ds = ds.random_map(load, seed=seed + 1)
  ds = ds.batch(batch_size, drop_remainder=True)
  return ds.to_iter_dataset(
      grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch))


def train_dataset(windows: Windows, batch_size: int, seed: int, paired: bool = False,
                  shard_index: int | None = None, shard_count: int | None = None,
                  num_threads: int = 2, prefetch: int = 8) -> grain.IterDataset:
  """Infinite iterator dataset of per-process batches (dict of (batch_size, ...) arrays)."""
  return sharded_batches(len(windows), functools.partial(_load, windows, paired), batch_size,
                         seed, f'{windows.seqs.name}/{windows.seqs.split}', 'windows', shard_index,
                         shard_count, num_threads, prefetch)


def fixed_windows(windows: Windows, num: int, seed: int, paired: bool = True,
                  related: bool = False) -> dict:
  """A deterministic sample of `num` windows (without replacement when possible), stacked.

  paired adds a window of another class ('paired_poses', ...); related one of the same class
  ('related_poses').
  """
  rng = np.random.default_rng(seed)
  indices = rng.choice(len(windows), size=num, replace=num > len(windows))
  items = []
  for i in indices:
    item = windows.item(int(i), rng, paired)
    if related:
      item['related_poses'] = windows.window(*windows.random_same(int(item['label']), rng))
    items.append(item)
  return {k: np.stack([it[k] for it in items]) for k in items[0]}


def iterate_batches(arrays: dict, batch_size: int):
  """Splits stacked arrays into full batches (the remainder is dropped: shapes stay static)."""
  n = len(next(iter(arrays.values())))
  for i in range(0, n - batch_size + 1, batch_size):
    yield {k: v[i:i + batch_size] for k, v in arrays.items()}
