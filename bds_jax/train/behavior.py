"""Stage-1 trainer: `train_and_evaluate(config, workdir)` for the behavior model.

Order as in big_vision: data -> mesh -> model and state -> steps -> restore -> loop. Running the
same command again resumes from the latest checkpoint in `workdir` and continues exactly
(parameters, both optimizer states, the KL multiplier, LR-schedule position, RNG and the data
iterator are all in the checkpoint). SIGTERM saves a checkpoint and returns cleanly. A NaN/inf
loss stops training with the step number, before anything non-finite is checkpointed.
"""

import dataclasses
import functools
import json
import logging
import math
import os
import signal
import time
from typing import Callable, Sequence

import jax
import numpy as np
import tqdm

from bds_jax import checkpointing
from bds_jax import metric_writer
from bds_jax import sharding
from bds_jax.data import pipeline
from bds_jax.data import sources
from bds_jax.data.normalization import Normalizer
from bds_jax.data.windows import Windows
from bds_jax.train import behavior_step
from bds_jax.viz import reenactment

log = logging.getLogger(__name__)

NORMALIZATION_FILE = 'normalization.json'
CONFIG_FILE = 'config.json'


class NonFiniteLossError(FloatingPointError):
  pass


@dataclasses.dataclass
class TrainResult:
  state: dict
  step: int
  eval_metrics: dict
  interrupted: bool


class _StopFlag:
  """Set by SIGTERM; the loop then saves and returns (preemption-safe on one host)."""

  def __init__(self):
    self.set = False
    self._previous = None

  def __enter__(self):
    try:
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    except ValueError:  # not the main thread: no signal handling
      self._previous = None
    return self

  def _handle(self, signum, frame):
    del signum, frame
    self.set = True

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def load_data(config, workdir: str):
  """Train/eval windows with train-split normalization (saved to / read from workdir)."""
  d = config.data
  kwargs = dict(data_dir=d.data_dir or None, builder_config=d.builder_config or None,
                prepare_mode=d.prepare, manual_dir=d.manual_dir or None)
  train_seqs = sources.load_sequences(d.name, d.train_split, **kwargs)
  eval_seqs = sources.load_sequences(d.name, d.eval_split, **kwargs)
  norm_path = os.path.join(workdir, NORMALIZATION_FILE)
  if os.path.exists(norm_path):
    normalizer = Normalizer.load(norm_path)
  else:
    normalizer = Normalizer.fit(train_seqs.poses)
    if jax.process_index() == 0:
      normalizer.save(norm_path)
  train = Windows(train_seqs, normalizer, d.seq_len, d.frame_lag)
  evals = Windows(eval_seqs, normalizer, d.seq_len, d.frame_lag)
  for w in (train, evals):
    if w.num_too_short:
      log.warning('%s/%s: %d sequences are shorter than one window and are not used.',
                      w.seqs.name, w.seqs.split, w.num_too_short)
  return train, evals, normalizer


def total_steps(config, steps_per_epoch: int) -> int:
  if config.num_steps > 0:
    return int(config.num_steps)
  return int(math.ceil(config.num_epochs * steps_per_epoch))


def _write_config(config, workdir):
  path = os.path.join(workdir, CONFIG_FILE)
  if jax.process_index() == 0:
    with open(path + '.tmp', 'w') as f:
      f.write(config.to_json_best_effort(indent=2))
    os.replace(path + '.tmp', path)


def train_and_evaluate(config, workdir: str,
                       hooks: Sequence[Callable[[int, dict], None]] = ()) -> TrainResult:
  """Trains (or resumes) the behavior model in `workdir`; returns the final state."""
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
  lr_schedule = behavior_step.make_optimizers(config, steps_per_epoch)[2]
  state = jax.device_put(state, repl)
  train_step = jax.jit(functools.partial(behavior_step.train_step, setup),
                       in_shardings=(repl, data_sharding), out_shardings=(repl, repl),
                       donate_argnums=0)
  eval_step = jax.jit(functools.partial(behavior_step.eval_step, setup),
                      in_shardings=(repl, data_sharding), out_shardings=repl)

  # ---------------------------------------------------------------------------- restore
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'), config.keep_checkpoints)
  start = ckpt.latest_step()
  if start is not None:
    state, _ = ckpt.restore(start, checkpointing.abstract_like(state), train_iter)
    log.info('Resumed from step %d in %s.', start, workdir)
  start = start or 0
  _write_config(config, workdir)
  writer = metric_writer.MetricWriter(workdir, resume_step=start)

  def save(step):
    _check_finite(state, ckpt)
    ckpt.save(step, state, train_iter, meta={'config': config.to_dict(), 'kind': 'behavior'})

  def evaluate(step):
    sums = {}
    for batch in pipeline.iterate_batches(eval_set, global_batch):
      m = eval_step(state, sharding.to_device_batch(sharding.local_slice(
          {'poses': batch['poses']}), data_sharding))
      for k, v in jax.device_get(m).items():
        sums[k] = sums.get(k, 0.0) + float(v)
    n = config.eval_batches
    out = {f'eval/{k}': v / n for k, v in sums.items()}
    writer.write_scalars(step, out)
    return out

  def gif(step):
    if jax.process_index() == 0:
      reenactment.write_gif(setup, state, eval_set, normalizer, config,
                            os.path.join(workdir, 'reenactment', f'step_{step:07d}.gif'))

  # ---------------------------------------------------------------------------- loop
  step = start
  pending, t_last, step_last = [], time.perf_counter(), start
  eval_metrics = {}
  try:
    with _StopFlag() as stop, tqdm.tqdm(total=num_steps, initial=start, desc='behavior',
                                        disable=not config.progress_bar) as bar:
      while step < num_steps:
        batch = sharding.to_device_batch(next(train_iter), data_sharding)
        state, metrics = train_step(state, batch)
        step += 1
        pending.append(metrics)
        for hook in hooks:
          hook(step, metrics)
        bar.update(1)
        if step % config.log_every_steps == 0 or step == num_steps:
          _check_finite(state, ckpt)
          now = time.perf_counter()
          scalars = {k: float(np.mean([m[k] for m in jax.device_get(pending)]))
                     for k in pending[0]}
          scalars['steps_per_sec'] = (step - step_last) / (now - t_last)
          scalars['lr'] = float(lr_schedule(step))
          writer.write_scalars(step, {f'train/{k}': v for k, v in scalars.items()})
          bar.set_postfix(loss=f"{scalars['loss']:.4f}", recon=f"{scalars['recon']:.4f}",
                          kl=f"{scalars['kl']:.1f}")
          pending, t_last, step_last = [], now, step
        if step % config.eval_every_steps == 0:
          eval_metrics = evaluate(step)
        if config.gif_every_steps and step % config.gif_every_steps == 0:
          gif(step)
        if step % config.checkpoint_every_steps == 0:
          save(step)
        if stop.set:
          log.warning('SIGTERM: saving step %d and stopping.', step)
          if ckpt.latest_step() != step:
            save(step)
          return TrainResult(state, step, eval_metrics, interrupted=True)

    if ckpt.latest_step() != step:
      save(step)
    if step % config.eval_every_steps or not eval_metrics:
      eval_metrics = evaluate(step)
    if config.final_gif:
      gif(step)
    if jax.process_index() == 0:
      with open(os.path.join(workdir, 'final_metrics.json'), 'w') as f:
        json.dump({'step': step, **eval_metrics}, f, indent=2)
    return TrainResult(state, step, eval_metrics, interrupted=False)
  finally:
    # Also on errors: finish in-flight saves so the last good checkpoint is complete.
    ckpt.wait()
    ckpt.close()
    writer.close()


def _check_finite(state, ckpt):
  bad = int(jax.device_get(state['bad_step']))
  if bad >= 0:
    raise NonFiniteLossError(
        f'Loss became NaN or inf at step {bad}; training stopped. The last good checkpoint is '
        f'step {ckpt.latest_step()} in {ckpt.directory}. Lower optim.lr or check the data.')
