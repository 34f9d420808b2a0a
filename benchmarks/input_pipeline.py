"""Throughput of the grain input pipeline beside the train step's consumption.

  python benchmarks/input_pipeline.py [--data_dir=... --batch=64 --batches=200 --width=1024]

Builds the embedded synthetic dataset if needed, then measures windows per second delivered
by the training pipeline (shuffle, window slicing, batching; with and without the paired
window) and, in the same run, the sequences per second the jitted behavior train step
consumes at the given width. The pipeline should be far faster than the step (target >= 10x).
"""

import functools
import os
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from benchmarks import common  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.data import pipeline  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.data import sources  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.data.normalization import Normalizer  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.data.windows import Windows  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.train import behavior_step  # pylint: disable=g-import-not-at-top,wrong-import-position
from configs import behavior  # pylint: disable=g-import-not-at-top,wrong-import-position

flags.DEFINE_string('data_dir', '', 'TFDS data dir ("" = default).')
flags.DEFINE_integer('batch', 64, 'Batch size.')
flags.DEFINE_integer('batches', 200, 'Batches to time per pipeline variant.')
flags.DEFINE_integer('width', 1024, 'Behavior width for the consumption figure.')
FLAGS = flags.FLAGS


def windows_per_second(windows, paired: bool) -> float:
  it = iter(pipeline.train_dataset(windows, FLAGS.batch, seed=0, paired=paired,
                                   shard_index=0, shard_count=1))
  for _ in range(5):  # warm the prefetch threads
    next(it)
  start = time.perf_counter()
  for _ in range(FLAGS.batches):
    next(it)
  return FLAGS.batches * FLAGS.batch / (time.perf_counter() - start)


def main(argv):
  del argv
  print(f'machine: {common.machine()}')
  seqs = sources.load_sequences('synthetic_motion', 'train', FLAGS.data_dir or None)
  windows = Windows(seqs, Normalizer.fit(seqs.poses))
  print(f'synthetic_motion/train: {len(seqs)} sequences, {len(windows)} windows')
  rates = {p: windows_per_second(windows, p) for p in (False, True)}
  cfg = behavior.get_config()
  cfg.model.width = FLAGS.width
  setup, state = behavior_step.build(cfg, 1000)
  step = jax.jit(functools.partial(behavior_step.train_step, setup), donate_argnums=0)
  batch = {'poses': np.random.default_rng(0).normal(size=(FLAGS.batch, 51, 51)).astype(
      np.float32)}
  consume = FLAGS.batch / common.train_step_seconds(step, state, batch, repeats=3)
  print(f'train step (width {FLAGS.width}) consumes {consume:.0f} windows/s')
  for paired, rate in rates.items():
    print(f'pipeline{" + paired window" if paired else ""}: {rate:.0f} windows/s '
          f'({rate / consume:.0f}x the step)')


if __name__ == '__main__':
  app.run(main)
