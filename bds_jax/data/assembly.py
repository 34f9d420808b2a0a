"""A run's datasets, assembled from its config: splits, windows, eval sets and step counts.

Trainers and evaluation all read data through these functions, so a behavior run, the flow
trained on it and its evaluation see the same sequences and windows. `data_config` is a
behavior run's `config.data` (dataset, splits, window length and frame lag).
"""

import logging
import math

from bds_jax.data import sources
from bds_jax.data.normalization import Normalizer
from bds_jax.data.windows import Windows

log = logging.getLogger(__name__)


def load_split(data_config, split: str) -> sources.SequenceSet:
  """Whole sequences of one split, building the dataset first if allowed and needed."""
  d = data_config
  return sources.load_sequences(
      d.name, split, data_dir=d.data_dir or None, builder_config=d.builder_config or None,
      prepare_mode=d.prepare, manual_dir=d.manual_dir or None)


def make_windows(data_config, seqs: sources.SequenceSet, normalizer: Normalizer) -> Windows:
  """Every model window of `seqs`; sequences shorter than one window are skipped (logged)."""
  windows = Windows(seqs, normalizer, data_config.seq_len, data_config.frame_lag)
  if windows.num_too_short:
    log.warning('%s/%s: %d sequences are shorter than one window and are not used.',
                seqs.name, seqs.split, windows.num_too_short)
  return windows


def load_windows(data_config, split: str, normalizer: Normalizer) -> Windows:
  return make_windows(data_config, load_split(data_config, split), normalizer)


def steps_per_epoch(num_windows: int, global_batch: int) -> int:
  """Full batches per pass over the windows (at least 1)."""
  return max(1, num_windows // global_batch)


def total_steps(config, steps_per_epoch_: int) -> int:
  """config.num_steps when set (> 0), else config.num_epochs epochs, rounded up."""
  if config.num_steps > 0:
    return int(config.num_steps)
  return int(math.ceil(config.num_epochs * steps_per_epoch_))
