"""Stage-2 trainer: a flow prior over the codes of a frozen, trained behavior model.

`train_and_evaluate(config, workdir)` loads the behavior run named by config.behavior_workdir
(its parameters and train-split normalization, through `bds_jax.runs`), initialises ActNorm
from a real batch of its posterior codes, and trains on fresh posterior samples of the train
windows. Own checkpoints with exact resume, logs (NLL, log-det, the NLL of Gaussian noise for
reference), and the evaluators of `config.evals`: NLL and log-probability of test posteriors,
KS Gaussianity of T(z) vs. of z itself, and sample figures.
"""

import functools
import logging
from typing import Callable, Sequence

import jax

from bds_jax import errors
from bds_jax import run_config
from bds_jax import runs
from bds_jax import sharding
from bds_jax.data import assembly
from bds_jax.data import pipeline
from bds_jax.evaluation import common as evaluators
from bds_jax.evaluation.context import Context
from bds_jax.sampling import Sampler
from bds_jax.train import flow_step
from bds_jax.train import loop

log = logging.getLogger(__name__)


def train_and_evaluate(config, workdir: str,
                       hooks: Sequence[Callable[[int, dict], None]] = ()) -> loop.TrainResult:
  if not config.behavior_workdir:
    raise errors.ConfigError('--config.behavior_workdir is required: the --workdir of a trained '
                     'behavior model (python train.py --config=configs/behavior.py ...).')
  config = runs.absolute_paths(config, ('behavior_workdir', 'data.data_dir'))
  run = run_config.open_for_training(config, workdir)
  behavior = runs.Run(config.behavior_workdir, config.data.data_dir or None).load_behavior(
      None if config.behavior_step < 0 else config.behavior_step)
  bcfg = behavior.config
  log.info('Behavior model from %s (step %d), code size %d.', behavior.run.path, behavior.step,
           bcfg.model.width)

  # ---------------------------------------------------------------------------- data
  d = bcfg.data
  train_windows = assembly.load_windows(d, d.train_split, behavior.normalizer)
  eval_windows = assembly.load_windows(d, d.eval_split, behavior.normalizer)
  global_batch = config.data.batch_size
  local_batch = sharding.per_process_batch_size(global_batch)
  steps_per_epoch = assembly.steps_per_epoch(len(train_windows), global_batch)
  num_steps = assembly.total_steps(config, steps_per_epoch)
  train_iter = iter(pipeline.train_dataset(
      train_windows, local_batch, seed=config.seed, num_threads=config.data.num_threads,
      prefetch=config.data.prefetch))
  eval_set = pipeline.fixed_windows(eval_windows, config.eval_batches * global_batch,
                                    seed=config.seed + 7, paired=False)

  # ---------------------------------------------------------------------------- model
  mesh = sharding.make_mesh()
  repl = sharding.replicated(mesh)
  data_sharding = sharding.batch_sharding(mesh)
  setup, state = flow_step.build(config, bcfg.model.width, behavior.model_def)
  vae = jax.device_put(behavior.params, repl)
  ckpt = run.checkpointer(config.keep_checkpoints)

  def init_actnorm(state):  # a new run: ActNorm from a batch of real posterior codes
    init = pipeline.fixed_windows(train_windows, config.flow.actnorm_init_samples,
                                  seed=config.seed + 3, paired=False)
    z = jax.jit(functools.partial(flow_step.posterior_codes, setup))(
        vae, jax.device_put(init['poses']), jax.random.key(config.seed + 3))
    return jax.jit(functools.partial(flow_step.init_actnorm, setup))(state, z)

  state = loop.restore_or_init(ckpt, state, train_iter, config, run, init_actnorm, repl)

  step_fn = jax.jit(functools.partial(flow_step.train_step, setup),
                    in_shardings=(repl, repl, data_sharding), out_shardings=(repl, repl),
                    donate_argnums=0)
  # The same posterior samples at every evaluation: batch i draws with fold_in(eval_key, i).
  eval_key = jax.random.key(config.seed + 11)
  eval_fn = jax.jit(
      lambda state, vae, batch, index: flow_step.eval_step(
          setup, state, vae, batch, jax.random.fold_in(eval_key, index)),
      in_shardings=(repl, repl, data_sharding, repl), out_shardings=repl)

  # ---------------------------------------------------------------------------- evaluators
  def make_sampler(state):  # host-local: figures are drawn on process 0 alone
    host = sharding.host_local_copy({'vae': vae, 'params': state['params'],
                                     'buffers': state['buffers']})
    return Sampler(behavior.model_def, host['vae'], behavior.normalizer, seq_len=d.seq_len,
                   frame_lag=d.frame_lag, flow_def=setup.flow_def,
                   flow_state={'params': host['params'], 'buffers': host['buffers']})

  ctx = Context('flow', bcfg, behavior.normalizer, train_windows, eval_windows, global_batch,
                data_sharding, make_sampler=make_sampler, workdir=run.path,
                fns={'eval_step': lambda state, batch, index: eval_fn(state, vae, batch, index)},
                data={'eval': eval_set})

  def to_device(batch):  # the step reads the poses only; nothing else is copied to devices
    return sharding.to_device_batch({'poses': batch['poses']}, data_sharding)

  return loop.run(
      loop.Settings.from_config(config, 'flow', run.path, num_steps), state,
      lambda s, b: step_fn(s, vae, b), train_iter, to_device, ckpt,
      evaluators.Evaluators(config.evals, ctx), hooks)
