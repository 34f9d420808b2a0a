"""The training loop shared by every trainer: logging, evaluation, figures, checkpoints, stops.

A trainer builds its state, jitted step and callbacks, then calls `run`. The state must be a
dict with 'step' (completed updates) and 'bad_step' (first step with a non-finite loss, or -1).
SIGTERM saves a checkpoint and returns (preemption-safe on one host). A NaN/inf loss raises
before anything non-finite is checkpointed, and in-flight saves always finish, so the last
checkpoint stays complete and good.
"""

import dataclasses
import json
import logging
import os
import signal
import time
from typing import Callable, Iterator, Sequence

import jax
import numpy as np
import tqdm

from bds_jax import checkpointing
from bds_jax import metric_writer

log = logging.getLogger(__name__)

PROGRESS_KEYS = ('loss', 'recon', 'kl', 'nll', 'log_det')


class NonFiniteLossError(FloatingPointError):
  pass


@dataclasses.dataclass
class TrainResult:
  state: dict
  step: int
  eval_metrics: dict
  interrupted: bool


class StopFlag:
  """Set by SIGTERM while active."""

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


def check_finite(state, ckpt: checkpointing.Checkpointer):
  bad = int(jax.device_get(state['bad_step']))
  if bad >= 0:
    raise NonFiniteLossError(
        f'Loss became NaN or inf at step {bad}; training stopped. The last good checkpoint is '
        f'step {ckpt.latest_step()} in {ckpt.directory}. Lower the learning rate or check the '
        'data.')


def with_absolute_paths(config, fields):
  """A copy of config whose (dotted) path fields are absolute.

  Runs record their config in config.json and later stages (the flow, evaluation) read it from
  wherever they run; a relative data_dir would then point somewhere else.
  """
  config = config.copy_and_resolve_references()
  for field in fields:
    *parents, leaf = field.split('.')
    node = config
    for p in parents:
      node = node[p]
    if node[leaf]:
      node[leaf] = os.path.abspath(os.path.expanduser(node[leaf]))
  return config


def write_config(config, workdir: str, name: str = 'config.json'):
  if jax.process_index() == 0:
    path = os.path.join(workdir, name)
    with open(path + '.tmp', 'w') as f:
      f.write(config.to_json_best_effort(indent=2))
    os.replace(path + '.tmp', path)


def run(*, config, workdir: str, name: str, state: dict, train_step: Callable,
        batches: Iterator, num_steps: int, ckpt: checkpointing.Checkpointer, data_iter,
        evaluate: Callable[[dict], dict], figures: Callable[[dict, int], None] | None = None,
        learning_rate: Callable[[int], float] | None = None,
        hooks: Sequence[Callable[[int, dict], None]] = ()) -> TrainResult:
  """Runs `train_step` from state['step'] to `num_steps`.

  Args:
    config: uses log_every_steps, eval_every_steps, checkpoint_every_steps, gif_every_steps,
      final_gif and progress_bar, and is stored in every checkpoint's metadata.
    workdir: run directory (metrics.jsonl, tensorboard/, final_metrics.json).
    name: progress-bar label and checkpoint kind.
    state: the (restored) train state.
    train_step: jitted (state, batch) -> (state, metrics dict of scalars).
    batches: yields device batches.
    num_steps: total number of updates.
    ckpt: where checkpoints go; `data_iter` (the grain iterator) is saved with each.
    evaluate: state -> dict of scalars (logged under eval/).
    figures: (state, step) -> None, writes figures; every gif_every_steps and at the end.
    learning_rate: step -> lr, for logging.
    hooks: called as hook(step, metrics) after every step (tests use this).
  """
  start = int(jax.device_get(state['step']))
  writer = metric_writer.MetricWriter(workdir, resume_step=start)
  meta = {'config': config.to_dict(), 'kind': name}
  step, eval_metrics = start, {}
  pending, t_last, step_last = [], time.perf_counter(), start

  def save():
    check_finite(state, ckpt)
    ckpt.save(step, state, data_iter, meta=meta)

  def do_eval():
    out = {f'eval/{k}': float(v) for k, v in evaluate(state).items()}
    writer.write_scalars(step, out)
    return out

  try:
    with StopFlag() as stop, tqdm.tqdm(total=num_steps, initial=start, desc=name,
                                       disable=not config.progress_bar) as bar:
      while step < num_steps:
        state, metrics = train_step(state, next(batches))
        step += 1
        pending.append(metrics)
        for hook in hooks:
          hook(step, metrics)
        bar.update(1)
        if step % config.log_every_steps == 0 or step == num_steps:
          check_finite(state, ckpt)
          now = time.perf_counter()
          scalars = {k: float(np.mean([m[k] for m in jax.device_get(pending)]))
                     for k in pending[0]}
          scalars['steps_per_sec'] = (step - step_last) / (now - t_last)
          if learning_rate is not None:
            scalars['lr'] = float(learning_rate(step))
          writer.write_scalars(step, {f'train/{k}': v for k, v in scalars.items()})
          bar.set_postfix({k: f'{scalars[k]:.4g}' for k in PROGRESS_KEYS if k in scalars})
          pending, t_last, step_last = [], now, step
        if step % config.eval_every_steps == 0:
          eval_metrics = do_eval()
        if figures and config.gif_every_steps and step % config.gif_every_steps == 0:
          figures(state, step)
        if step % config.checkpoint_every_steps == 0:
          save()
        if stop.set:
          log.warning('SIGTERM: saving step %d and stopping.', step)
          if ckpt.latest_step() != step:
            save()
          return TrainResult(state, step, eval_metrics, interrupted=True)

    if ckpt.latest_step() != step:
      save()
    if step % config.eval_every_steps or not eval_metrics:
      eval_metrics = do_eval()
    if figures and config.final_gif:
      figures(state, step)
    if jax.process_index() == 0:
      with open(os.path.join(workdir, 'final_metrics.json'), 'w') as f:
        json.dump({'step': step, **eval_metrics}, f, indent=2)
    return TrainResult(state, step, eval_metrics, interrupted=False)
  finally:
    # Also on errors: finish in-flight saves so the last good checkpoint is complete.
    ckpt.wait()
    ckpt.close()
    writer.close()
