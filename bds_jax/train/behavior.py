"""Stage-1 trainer: `train_and_evaluate(config, workdir)` for the behavior model.

Order as in big_vision: data -> mesh -> model and state -> steps -> restore -> evaluators ->
loop. Running the same command again resumes from the latest checkpoint in `workdir` and
continues exactly (parameters, both optimizer states, the KL multiplier, LR-schedule position,
RNG and the data iterator are all in the checkpoint). The loop itself (logging, SIGTERM, NaN
stop) is `bds_jax.train.loop`; evaluation and figures are the evaluators of `config.evals`.
"""

import functools
import logging
from typing import Callable, Sequence

import jax

from bds_jax import run_config
from bds_jax import runs
from bds_jax import sharding
from bds_jax.data import assembly
from bds_jax.data import pipeline
from bds_jax.evaluation import common as evaluators
from bds_jax.evaluation.context import Context
from bds_jax.sampling import Sampler
from bds_jax.train import behavior_step
from bds_jax.train import loop

log = logging.getLogger(__name__)

NonFiniteLossError = loop.NonFiniteLossError


def train_and_evaluate(config, workdir: str,
                       hooks: Sequence[Callable[[int, dict], None]] = ()) -> loop.TrainResult:
  """Trains (or resumes) the behavior model in `workdir`; returns the final state."""
  config = runs.absolute_paths(config, ('data.data_dir', 'data.manual_dir'))
  run = run_config.open_for_training(config, workdir)

  # ---------------------------------------------------------------------------- data
  d = config.data
  train_seqs = assembly.load_split(d, d.train_split)
  normalizer = run.load_or_fit_normalizer(train_seqs.poses)
  train_windows = assembly.make_windows(d, train_seqs, normalizer)
  eval_windows = assembly.load_windows(d, d.eval_split, normalizer)
  global_batch = d.batch_size
  local_batch = sharding.per_process_batch_size(global_batch)
  steps_per_epoch = assembly.steps_per_epoch(len(train_windows), global_batch)
  num_steps = assembly.total_steps(config, steps_per_epoch)
  log.info('%d train windows (%d steps/epoch), %d eval windows; training %d steps.',
           len(train_windows), steps_per_epoch, len(eval_windows), num_steps)
  train_iter = iter(pipeline.train_dataset(
      train_windows, local_batch, seed=config.seed, paired=False, num_threads=d.num_threads,
      prefetch=d.prefetch))
  eval_set = pipeline.fixed_windows(eval_windows, config.eval_batches * global_batch,
                                    seed=config.seed + 7, paired=True)

  # ---------------------------------------------------------------------------- mesh, model
  mesh = sharding.make_mesh()
  repl = sharding.replicated(mesh)
  data_sharding = sharding.batch_sharding(mesh)
  setup, state = behavior_step.build(config, steps_per_epoch, normalizer)
  state = jax.device_put(state, repl)
  train_step = jax.jit(functools.partial(behavior_step.train_step, setup),
                       in_shardings=(repl, data_sharding), out_shardings=(repl, repl),
                       donate_argnums=0)
  eval_step = jax.jit(functools.partial(behavior_step.eval_step, setup),
                      in_shardings=(repl, data_sharding), out_shardings=repl)

  # ---------------------------------------------------------------------------- restore
  ckpt = run.checkpointer(config.keep_checkpoints)
  state = loop.restore_latest(ckpt, state, train_iter, config, run) or state

  # ---------------------------------------------------------------------------- evaluators
  def make_sampler(state):  # host-local: figures are drawn on process 0 alone
    return Sampler(setup.model_def, sharding.host_local_copy(state['vae']), normalizer,
                   seq_len=d.seq_len, frame_lag=d.frame_lag)

  ctx = Context('behavior', config, normalizer, train_windows, eval_windows, global_batch,
                data_sharding, make_sampler=make_sampler, workdir=run.path,
                fns={'eval_step': lambda state, batch, index: eval_step(state, batch)},
                data={'eval': eval_set})

  def to_device(batch):  # the step reads the poses only; nothing else is copied to devices
    return sharding.to_device_batch({'poses': batch['poses']}, data_sharding)

  return loop.run(
      loop.Settings.from_config(config, 'behavior', run.path, num_steps, setup.lr_schedule),
      state, train_step, train_iter, to_device, ckpt, evaluators.Evaluators(config.evals, ctx),
      hooks)
