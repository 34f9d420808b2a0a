"""The training loop shared by every trainer: logging, evaluators, checkpoints, stops.

A trainer builds its state, jitted step, data iterator and evaluators, then calls `run`. The
state must be a dict with 'step' (completed updates) and 'bad_step' (first step with a
non-finite loss, or -1). SIGTERM and Ctrl-C (SIGINT) save a checkpoint and return
(preemption-safe on one host); a second Ctrl-C aborts at once. A NaN/inf loss raises before
anything non-finite is checkpointed, and in-flight saves always finish, so the last checkpoint
stays complete and good. The run directory's lock (`bds_jax.run_config.open_for_training`) is
released when the loop ends, however it ends.

The step runs under `jax.transfer_guard('disallow')`, as big_vision's trainer does: every copy
between host and device in it must be explicit (`to_device` for the batch, `jax.device_get`
for metrics), so a stray one fails loudly instead of stalling every step.
"""

import dataclasses
import json
import logging
import os
import signal
import time
from typing import Any, Callable, Sequence

import jax
import numpy as np
import tqdm

from bds_jax import checkpointing
from bds_jax import errors
from bds_jax import metric_writer
from bds_jax import run_config
from bds_jax import run_layout
from bds_jax import run_lock

log = logging.getLogger(__name__)

PROGRESS_KEYS = ('loss', 'recon', 'kl', 'nll', 'log_det')


class NonFiniteLossError(errors.UserError, FloatingPointError):
  pass


@dataclasses.dataclass
class TrainResult:
  state: dict
  step: int
  eval_metrics: dict
  interrupted: bool


class StopFlag:
  """Set by SIGTERM or SIGINT while active; a second SIGINT raises KeyboardInterrupt."""

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.set = False
    self.name = None
    self._previous = {}

  def __enter__(self):
    try:
      self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
    except ValueError:  # not the main thread: no signal handling
      self._previous = {}
    return self

  def _handle(self, signum, frame):
    del frame
    if self.set and signum == signal.SIGINT:
      raise KeyboardInterrupt  # the second Ctrl-C: stop now, without the checkpoint
    self.set, self.name = True, signal.Signals(signum).name
    if signum == signal.SIGINT:
      log.warning('Ctrl-C: saving a checkpoint after this step, then stopping (press Ctrl-C '
                  'again to abort without it).')

  def __exit__(self, *exc):
    for s, previous in self._previous.items():
      signal.signal(s, previous)


def check_finite(state, ckpt: checkpointing.Checkpointer):
  bad = int(jax.device_get(state['bad_step']))
  if bad >= 0:
    last = ckpt.latest_step()
    good = ('no checkpoint was written yet' if last is None else
            f'the last good checkpoint is step {last} in {ckpt.directory}')
    raise NonFiniteLossError(
        f'Loss became NaN or inf at step {bad}; training stopped, and {good}. Lower the '
        'learning rate or check the data.')


def restore_latest(ckpt: checkpointing.Checkpointer, state: dict, data_iter, config,
                   run=None):
  """The newest checkpoint that restores into `state`'s layout (and `data_iter`), or None.

  A checkpoint that fails is logged and moved aside, and the one before it is used
  (`Checkpointer.restore_latest`); one trained with a config that differs from `config` in
  fields that change the model or data is an error listing them. The safe config changes
  `run` (from open_for_training) accepted are recorded at the step restored.
  """
  abstract = checkpointing.abstract_like(state)

  def differences(stored):
    return run_config.describe(run_config.differences(stored, config, config.trainer)[0])

  restored = ckpt.restore_latest(lambda step: ckpt.restore(step, abstract, data_iter)[0],
                                 differences, quarantine=jax.process_index() == 0)
  if run is not None:
    run_config.record_safe_changes(run, 0 if restored is None else restored[1])
  if restored is None:
    return None
  log.info('Resumed from step %d in %s.', restored[1], os.path.dirname(ckpt.directory))
  return restored[0]


def restore_or_init(ckpt: checkpointing.Checkpointer, state: dict, data_iter, config, run,
                    init: Callable[[dict], dict], placement) -> dict:
  """`restore_latest` into `state` placed with `placement`; for a new run, `init(state)` (e.g.
  data-dependent initialisation, which a resumed run must not redo: its checkpoint holds the
  result). Either way the state is returned placed with `placement`."""
  restored = restore_latest(ckpt, jax.device_put(state, placement), data_iter, config, run)
  return jax.device_put(init(state) if restored is None else restored, placement)


@dataclasses.dataclass(frozen=True)
class Settings:
  """What the loop needs to know besides the state, the step and the data.

  Attributes:
    name: progress-bar label, and the checkpoints' kind.
    workdir: run directory: metrics.jsonl, tensorboard/ and final_metrics.json go there.
    num_steps: total number of updates.
    log_every_steps, checkpoint_every_steps: intervals.
    progress_bar: show a tqdm bar.
    meta: stored in every checkpoint's metadata (the config).
    learning_rate: step -> learning rate, logged as train/lr (None: not logged).
  """
  name: str
  workdir: str
  num_steps: int
  log_every_steps: int
  checkpoint_every_steps: int
  progress_bar: bool = True
  meta: dict = dataclasses.field(default_factory=dict)
  learning_rate: Callable[[int], Any] | None = None

  @classmethod
  def from_config(cls, config, name: str, workdir: str, num_steps: int,
                  learning_rate: Callable[[int], Any] | None = None) -> 'Settings':
    return cls(name, workdir, int(num_steps), int(config.log_every_steps),
               int(config.checkpoint_every_steps), bool(config.progress_bar),
               {'config': config.to_dict(), 'kind': name}, learning_rate)


class NoEvaluators:

  def run(self, state, step, final=False):
    del state, step, final
    return {}


def run(settings: Settings, state: dict, train_step: Callable, data_iter,
        to_device: Callable[[Any], Any], ckpt: checkpointing.Checkpointer, evaluators=None,
        hooks: Sequence[Callable[[int, dict], None]] = ()) -> TrainResult:
  """Runs `train_step` from state['step'] to `settings.num_steps`.

  Args:
    settings: see Settings.
    state: the (restored) train state.
    train_step: jitted (state, device batch) -> (state, metrics dict of scalars).
    data_iter: the grain iterator of host batches; its position is saved with each checkpoint.
    to_device: host batch -> device batch (explicitly placed and sharded).
    ckpt: where checkpoints go.
    evaluators: an object whose `run(state, step, final=False)` runs the evaluators due at
      `step` (after the last step: final=True) and returns their metrics
      (`bds_jax.evaluation.common.Evaluators`): scalars are logged and kept as the eval
      metrics, (H, W, 3) uint8 images (figures) go to TensorBoard.
    hooks: called as hook(step, metrics) after every step (tests use this).
  """
  evaluators = evaluators or NoEvaluators()
  start = int(jax.device_get(state['step']))
  writer = metric_writer.MetricWriter(settings.workdir, resume_step=start)
  num_steps = settings.num_steps
  step, eval_metrics = start, {}
  pending, t_last, step_last = [], time.perf_counter(), start

  def save():
    check_finite(state, ckpt)
    ckpt.save(step, state, data_iter, meta=settings.meta)

  def evaluate(final=False):
    results = evaluators.run(state, step, final)
    images = {k: v for k, v in results.items() if metric_writer.is_image(v)}  # figures
    out = {k: float(v) for k, v in results.items() if k not in images}
    if out:
      writer.write_scalars(step, out)
      eval_metrics.update(out)
    if images:
      writer.write_images(step, images)

  try:
    with StopFlag() as stop, tqdm.tqdm(total=num_steps, initial=start, desc=settings.name,
                                       disable=not settings.progress_bar) as bar:
      while step < num_steps:
        with jax.transfer_guard('disallow'):
          state, metrics = train_step(state, to_device(next(data_iter)))
        step += 1
        pending.append(metrics)
        for hook in hooks:
          hook(step, metrics)
        bar.update(1)
        if step % settings.log_every_steps == 0 or step == num_steps:
          check_finite(state, ckpt)
          now = time.perf_counter()
          with jax.transfer_guard('disallow'):
            fetched = jax.device_get(pending)
          scalars = {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]}
          scalars['steps_per_sec'] = (step - step_last) / (now - t_last)
          if settings.learning_rate is not None:
            scalars['lr'] = float(settings.learning_rate(step))
          writer.write_scalars(step, {f'train/{k}': v for k, v in scalars.items()})
          bar.set_postfix({k: f'{scalars[k]:.4g}' for k in PROGRESS_KEYS if k in scalars})
          pending, t_last, step_last = [], now, step
        evaluate()
        if step % settings.checkpoint_every_steps == 0:
          save()
        if stop.set:
          log.warning('%s: saving step %d and stopping.', stop.name, step)
          if ckpt.latest_step() != step:
            save()
          return TrainResult(state, step, dict(eval_metrics), interrupted=True)

    if ckpt.latest_step() != step:
      save()
    evaluate(final=True)
    if jax.process_index() == 0:
      with open(os.path.join(settings.workdir, run_layout.FINAL_METRICS_FILE), 'w') as f:
        json.dump({'step': step, **eval_metrics}, f, indent=2)
    return TrainResult(state, step, dict(eval_metrics), interrupted=False)
  finally:
    # Also on errors: finish in-flight saves so the last good checkpoint is complete.
    try:
      ckpt.wait()
      ckpt.close()
      writer.close()
    finally:
      run_lock.release(settings.workdir)
