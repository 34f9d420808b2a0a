"""Stage-1 trainer: `train_and_evaluate(config, workdir)` for the behavior model.

Order as in big_vision: data -> mesh -> model and state -> steps -> restore -> loop. Running the
same command again resumes from the latest checkpoint in `workdir` and continues exactly
(parameters, both optimizer states, the KL multiplier, LR-schedule position, RNG and the data
iterator are all in the checkpoint). The loop itself (logging, SIGTERM, NaN stop) is
`bds_jax.train.loop`.
"""

import functools
import logging
import math
import os
from typing import Callable, Sequence

import jax

from bds_jax import checkpointing
from bds_jax import sharding
from bds_jax.data import pipeline
from bds_jax.data import sources
from bds_jax.data.normalization import Normalizer
from bds_jax.data.windows import Windows
from bds_jax.train import behavior_step
from bds_jax.train import loop
from bds_jax.viz import reenactment

log = logging.getLogger(__name__)

NORMALIZATION_FILE = 'normalization.json'
CHECKPOINT_DIR = 'checkpoints'
NonFiniteLossError = loop.NonFiniteLossError


def load_split(config, split: str):
  d = config.data
  return sources.load_sequences(
      d.name, split, data_dir=d.data_dir or None, builder_config=d.builder_config or None,
      prepare_mode=d.prepare, manual_dir=d.manual_dir or None)


def make_windows(config, seqs, normalizer: Normalizer) -> Windows:
  windows = Windows(seqs, normalizer, config.data.seq_len, config.data.frame_lag)
  if windows.num_too_short:
    log.warning('%s/%s: %d sequences are shorter than one window and are not used.',
                seqs.name, seqs.split, windows.num_too_short)
  return windows


def load_data(config, workdir: str):
  """Train/eval windows with train-split normalization (saved to / read from workdir)."""
  train_seqs = load_split(config, config.data.train_split)
  norm_path = os.path.join(workdir, NORMALIZATION_FILE)
  if os.path.exists(norm_path):
    normalizer = Normalizer.load(norm_path)
  else:
    normalizer = Normalizer.fit(train_seqs.poses)
    if jax.process_index() == 0:
      normalizer.save(norm_path)
  eval_seqs = load_split(config, config.data.eval_split)
  return (make_windows(config, train_seqs, normalizer),
          make_windows(config, eval_seqs, normalizer), normalizer)


def total_steps(config, steps_per_epoch: int) -> int:
  if config.num_steps > 0:
    return int(config.num_steps)
  return int(math.ceil(config.num_epochs * steps_per_epoch))


def evaluator(eval_fn, eval_set: dict, global_batch: int, data_sharding):
  """state -> mean of eval_fn(state, batch) over the fixed eval batches."""

  def evaluate(state):
    sums, n = {}, 0
    for batch in pipeline.iterate_batches(eval_set, global_batch):
      local = sharding.local_slice({'poses': batch['poses']})
      m = jax.device_get(eval_fn(state, sharding.to_device_batch(local, data_sharding)))
      for k, v in m.items():
        sums[k] = sums.get(k, 0.0) + float(v)
      n += 1
    return {k: v / n for k, v in sums.items()}

  return evaluate


def train_and_evaluate(config, workdir: str,
                       hooks: Sequence[Callable[[int, dict], None]] = ()) -> loop.TrainResult:
  """Trains (or resumes) the behavior model in `workdir`; returns the final state."""
  config = loop.with_absolute_paths(config, ('data.data_dir', 'data.manual_dir'))
  workdir = os.path.abspath(workdir)
  os.makedirs(workdir, exist_ok=True)

  # ---------------------------------------------------------------------------- data
  train_windows, eval_windows, normalizer = load_data(config, workdir)
  global_batch = config.data.batch_size
  local_batch = sharding.per_process_batch_size(global_batch)
  steps_per_epoch = max(1, len(train_windows) // global_batch)
  num_steps = total_steps(config, steps_per_epoch)
  log.info('%d train windows (%d steps/epoch), %d eval windows; training %d steps.',
           len(train_windows), steps_per_epoch, len(eval_windows), num_steps)
  train_iter = iter(pipeline.train_dataset(
      train_windows, local_batch, seed=config.seed, paired=False,
      num_threads=config.data.num_threads, prefetch=config.data.prefetch))
  eval_set = pipeline.fixed_windows(eval_windows, config.eval_batches * global_batch,
                                    seed=config.seed + 7, paired=True)

  # ---------------------------------------------------------------------------- mesh, model
  mesh = sharding.make_mesh()
  repl = sharding.replicated(mesh)
  data_sharding = sharding.batch_sharding(mesh)
  setup, state = behavior_step.build(config, steps_per_epoch)
  state = jax.device_put(state, repl)
  train_step = jax.jit(functools.partial(behavior_step.train_step, setup),
                       in_shardings=(repl, data_sharding), out_shardings=(repl, repl),
                       donate_argnums=0)
  eval_step = jax.jit(functools.partial(behavior_step.eval_step, setup),
                      in_shardings=(repl, data_sharding), out_shardings=repl)

  # ---------------------------------------------------------------------------- restore
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, CHECKPOINT_DIR),
                                    config.keep_checkpoints)
  if (last := ckpt.latest_step()) is not None:
    state, _ = ckpt.restore(last, checkpointing.abstract_like(state), train_iter)
    log.info('Resumed from step %d in %s.', last, workdir)
  loop.write_config(config, workdir)

  def figures(state, step):
    if jax.process_index() == 0:
      reenactment.write_gif(setup, state, eval_set, normalizer, config,
                            os.path.join(workdir, 'reenactment', f'step_{step:07d}.gif'))

  batches = (sharding.to_device_batch(b, data_sharding) for b in train_iter)
  return loop.run(config=config, workdir=workdir, name='behavior', state=state,
                  train_step=train_step, batches=batches, num_steps=num_steps, ckpt=ckpt,
                  data_iter=train_iter,
                  evaluate=evaluator(eval_step, eval_set, global_batch, data_sharding),
                  figures=figures, learning_rate=setup.lr_schedule, hooks=hooks)
