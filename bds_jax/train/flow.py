"""Stage-2 trainer: a flow prior over the codes of a frozen, trained behavior model.

`train_and_evaluate(config, workdir)` loads the behavior run named by config.behavior_workdir
(parameters and its train-split normalization), initialises ActNorm from a real batch of its
posterior codes, and trains on fresh posterior samples of the train windows. Own checkpoints
with exact resume, logs (NLL, log-det, the NLL of Gaussian noise for reference), evaluation on
test posteriors (NLL, KS Gaussianity of T(z) vs. of z itself) and sample videos.
"""

import functools
import logging
import os
from typing import Callable, Sequence

import jax
import numpy as np

from bds_jax import checkpointing
from bds_jax import inference
from bds_jax import sharding
from bds_jax.data import pipeline
from bds_jax.metrics import gaussianity
from bds_jax.sampling import Sampler
from bds_jax.train import behavior as behavior_trainer
from bds_jax.train import flow_step
from bds_jax.train import loop
from bds_jax.viz import stick_figures

log = logging.getLogger(__name__)


def train_and_evaluate(config, workdir: str,
                       hooks: Sequence[Callable[[int, dict], None]] = ()) -> loop.TrainResult:
  if not config.behavior_workdir:
    raise ValueError('--config.behavior_workdir is required: the --workdir of a trained '
                     'behavior model (python train.py --config=configs/behavior.py ...).')
  config = loop.with_absolute_paths(config, ('behavior_workdir', 'data.data_dir'))
  workdir = os.path.abspath(workdir)
  os.makedirs(workdir, exist_ok=True)
  behavior = inference.load_behavior(
      config.behavior_workdir, None if config.behavior_step < 0 else config.behavior_step)
  bcfg = behavior.config
  if config.data.data_dir:
    bcfg.data.data_dir = config.data.data_dir
  log.info('Behavior model from %s (step %d), code size %d.', behavior.workdir, behavior.step,
           bcfg.model.width)

  # ---------------------------------------------------------------------------- data
  train_windows = behavior_trainer.make_windows(
      bcfg, behavior_trainer.load_split(bcfg, bcfg.data.train_split), behavior.normalizer)
  eval_windows = behavior_trainer.make_windows(
      bcfg, behavior_trainer.load_split(bcfg, bcfg.data.eval_split), behavior.normalizer)
  global_batch = config.data.batch_size
  local_batch = sharding.per_process_batch_size(global_batch)
  steps_per_epoch = max(1, len(train_windows) // global_batch)
  num_steps = behavior_trainer.total_steps(config, steps_per_epoch)
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
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'),
                                    config.keep_checkpoints)
  if (last := ckpt.latest_step()) is not None:
    state, _ = ckpt.restore(last, checkpointing.abstract_like(jax.device_put(state, repl)),
                            train_iter)
    log.info('Resumed from step %d in %s.', last, workdir)
  else:
    init = pipeline.fixed_windows(train_windows, config.flow.actnorm_init_samples,
                                  seed=config.seed + 3, paired=False)
    z = jax.jit(functools.partial(flow_step.posterior_codes, setup))(
        vae, init['poses'], jax.random.key(config.seed + 3))
    state = jax.jit(functools.partial(flow_step.init_actnorm, setup))(state, z)
  state = jax.device_put(state, repl)
  loop.write_config(config, workdir)

  step_fn = jax.jit(functools.partial(flow_step.train_step, setup),
                    in_shardings=(repl, repl, data_sharding), out_shardings=(repl, repl),
                    donate_argnums=0)
  eval_fn = jax.jit(functools.partial(flow_step.eval_step, setup))
  eval_key = jax.random.key(config.seed + 11)  # the same posterior samples at every eval

  def evaluate(state):
    sums, us, zs, n = {}, [], [], 0
    for i, batch in enumerate(pipeline.iterate_batches(eval_set, global_batch)):
      m, u, z = jax.device_get(eval_fn(state, vae, {'poses': batch['poses']},
                                       jax.random.fold_in(eval_key, i)))
      for k, v in m.items():
        sums[k] = sums.get(k, 0.0) + float(v)
      us.append(u)
      zs.append(z)
      n += 1
    out = {k: v / n for k, v in sums.items()}
    out.update({f'flow_{k}': v for k, v in
                gaussianity.ks_normal(np.concatenate(us), config.ks_alpha).items()})
    out.update({f'posterior_{k}': v for k, v in
                gaussianity.ks_normal(np.concatenate(zs), config.ks_alpha).items()})
    return out

  def figures(state, step):
    if jax.process_index() == 0:
      write_samples(config, behavior, setup, state, eval_set, workdir, step)

  batches = (sharding.to_device_batch(b, data_sharding) for b in train_iter)
  return loop.run(config=config, workdir=workdir, name='flow', state=state,
                  train_step=lambda s, b: step_fn(s, vae, b), batches=batches,
                  num_steps=num_steps, ckpt=ckpt, data_iter=train_iter, evaluate=evaluate,
                  figures=figures, hooks=hooks)


def write_samples(config, behavior, setup, state, eval_set, workdir, step):
  """A sample-loop video and a grid of flow vs. Gaussian samples from one test start posture."""
  host = sharding.host_local_copy(state)
  flow_run = inference.FlowRun(workdir, step, config, setup.flow_def, host['params'],
                               host['buffers'])
  sampler = Sampler(behavior, flow_run)
  start = behavior.normalizer.denormalize(eval_set['poses'][0, 0])
  key = jax.random.key(config.seed + 5)
  ext = config.video_format
  out = os.path.join(workdir, 'samples')
  chain = sampler.sample_loop(key, start, config.sample_loop_behaviors, prior='flow')
  stick_figures.save_animation(
      os.path.join(out, f'sample_loop_step_{step:07d}.{ext}'),
      stick_figures.render_frames([[('flow sample loop', chain)]]), fps=sampler.fps)
  starts = np.repeat(start[None], 3, axis=0)
  rows = []
  for prior in ('flow', 'gaussian'):
    seqs = sampler.decode(sampler.sample_codes(3, jax.random.fold_in(key, len(rows)), prior),
                          starts)
    rows.append([(f'{prior} sample {i + 1}', s) for i, s in enumerate(seqs)])
  stick_figures.save_animation(os.path.join(out, f'samples_step_{step:07d}.{ext}'),
                               stick_figures.render_frames(rows), fps=sampler.fps)
