"""Diffusion-prior trainer: p(behavior code | observation[, label]) over a frozen behavior model.

`train_and_evaluate(config, workdir)` loads the behavior run named by config.behavior_workdir,
builds (observation, behavior window) examples of its train split (`bds_jax.data.observed`),
sets the code scaling from the posterior codes of the whole train split (`code_stats`; stored in
the checkpoint and, for reading, in code_stats.json), and trains the observation
autoencoder, then the denoiser (`diffusion_step`), on the shared loop: exact resume, SIGTERM,
the NaN stop, sharding and logging are the other trainers'. Evaluation logs the held-out
losses and best-of-K decoding errors of DDIM samples beside N(0, I) codes.
"""

import functools
import json
import logging
import os
import time
from typing import Callable, Sequence

import jax
import numpy as np

from bds_jax import errors
from bds_jax import run_config
from bds_jax import run_layout
from bds_jax import runs
from bds_jax import sharding
from bds_jax.data import assembly
from bds_jax.data import observed as observed_lib
from bds_jax.data import pipeline
from bds_jax.evaluation import common as evaluators
from bds_jax.evaluation.context import Context
from bds_jax.models import build as model_build
from bds_jax.train import diffusion_step
from bds_jax.train import loop

log = logging.getLogger(__name__)


def _examples(config, bcfg, split, normalizer) -> observed_lib.ObservedWindows:
  seqs = assembly.load_split(bcfg.data, split)
  return observed_lib.ObservedWindows(seqs, normalizer, config.data.observed,
                                      bcfg.data.seq_len, bcfg.data.frame_lag)


STATS_CHUNK = 1024  # examples per encoder call while computing the code scaling


def code_stats(config, setup, vae, train: observed_lib.ObservedWindows) -> dict:
  """Per-dimension min and max of posterior codes (one sample μ + σ·ε per example, as the
  denoiser's targets and BeLFusion's statistics) of every training example, streamed in
  chunks through one pass of the encoder; or, with model.code_stats_samples > 0, of that many
  random examples (the rule of runs made before, kept so that they restart the same way).

  Deterministic (fixed keys), and consumes nothing of the training iterator or its RNG."""
  encode = jax.jit(functools.partial(diffusion_step.posterior_codes, setup))
  key = jax.random.key(config.seed + 3)
  n = int(config.model.code_stats_samples)
  if n > 0:
    z = np.asarray(encode(vae, jax.device_put(train.fixed(n, seed=config.seed + 3)['poses']),
                          key))
    return {'lo': z.min(axis=0), 'hi': z.max(axis=0), 'codes': n, 'rule': f'{n} random examples'}
  total = len(train)
  chunk = min(STATS_CHUNK, total)
  lo = hi = None
  for b, start in enumerate(range(0, total, chunk)):
    # The last chunk is padded (one compiled shape); the padding's codes are dropped.
    ids = np.minimum(np.arange(start, start + chunk), total - 1)
    poses = np.stack([train.item(int(i))['poses'] for i in ids])
    z = np.asarray(encode(vae, jax.device_put(poses), jax.random.fold_in(key, b)))
    z = z[:min(chunk, total - start)]
    lo = z.min(axis=0) if lo is None else np.minimum(lo, z.min(axis=0))
    hi = z.max(axis=0) if hi is None else np.maximum(hi, z.max(axis=0))
  return {'lo': lo, 'hi': hi, 'codes': total, 'rule': 'every training example'}


def _write_code_stats(run, stats: dict, behavior_step: int):
  if jax.process_index() != 0:
    return
  path = os.path.join(run.path, run_layout.CODE_STATS_FILE)
  with open(path + '.tmp', 'w') as f:
    json.dump({'code_lo': stats['lo'].tolist(), 'code_hi': stats['hi'].tolist(),
               'codes': int(stats['codes']), 'rule': stats['rule'],
               'behavior_step': int(behavior_step),
               'what': 'per-dimension min and max of posterior samples of the train split\'s '
                       'behavior windows: the min-max scaling of codes to [-1, 1] (a copy; '
                       'training and sampling use the checkpoint\'s)'}, f, indent=2)
  os.replace(path + '.tmp', path)


def _validate(config):
  """Diffusion-specific values that cannot work, as one line naming the flag."""
  checks = (
      ('loss.k', config.loss.k, isinstance(config.loss.k, int) and config.loss.k >= 1,
       'must be an integer >= 1'),
      ('model.num_steps', config.model.num_steps, config.model.num_steps >= 1, 'must be >= 1'),
      ('data.observed', config.data.observed, config.data.observed >= 2, 'must be >= 2'),
      ('model.label_dropout', config.model.label_dropout,
       0.0 <= config.model.label_dropout < 1.0, 'must be in [0, 1)'),
      ('ema.decay', config.ema.decay, 0.0 <= config.ema.decay < 1.0, 'must be in [0, 1)'),
      ('ema.every_steps', config.ema.every_steps, config.ema.every_steps >= 1, 'must be >= 1'),
      ('optim.obs_steps', config.optim.obs_steps,
       0 <= config.optim.obs_steps < max(config.num_steps, 1),
       f'must be >= 0 and leave denoiser steps before num_steps={config.num_steps}'),
  )
  for field, value, ok, why in checks:
    if not ok:
      raise errors.ConfigError(f'--config.{field}={value!r}: {why} (configs/diffusion.py).')


def train_and_evaluate(config, workdir: str,
                       hooks: Sequence[Callable[[int, dict], None]] = ()) -> loop.TrainResult:
  if not config.behavior_workdir:
    raise errors.ConfigError('--config.behavior_workdir is required: the --workdir of a trained '
                             'behavior model (python train.py --config=configs/behavior.py ...).')
  run_config.validate(config)  # before any data is read
  _validate(config)
  config = runs.absolute_paths(config, ('behavior_workdir', 'data.data_dir'))
  behavior_run = runs.Run(config.behavior_workdir, config.data.data_dir or None)
  if not behavior_run.exists():
    raise errors.ConfigError(f'--config.behavior_workdir={config.behavior_workdir}: no behavior '
                             f'run there ({behavior_run.config_path} is missing).')
  behavior = behavior_run.load_behavior(None if config.behavior_step < 0 else
                                        config.behavior_step)
  bcfg = behavior.config
  train = _examples(config, bcfg, bcfg.data.train_split, behavior.normalizer)
  test = _examples(config, bcfg, bcfg.data.eval_split, behavior.normalizer)
  if config.model.num_labels < 0:  # resolved before the config is stored or compared
    config.model.num_labels = len(train.seqs.label_names)
  run = run_config.open_for_training(config, workdir)
  log.info('Behavior model from %s (step %d), code size %d; %d train examples, %d classes.',
           behavior.run.path, behavior.step, bcfg.model.width, len(train),
           config.model.num_labels)

  # ---------------------------------------------------------------------------- data
  global_batch = config.data.batch_size
  local_batch = sharding.per_process_batch_size(global_batch)
  num_steps = assembly.total_steps(config, assembly.steps_per_epoch(len(train), global_batch))
  train_iter = iter(pipeline.sharded_batches(
      len(train), lambda i, rng: train.item(int(i), rng), local_batch, config.seed,
      f'{train.seqs.name}/{train.seqs.split}', 'examples', num_threads=config.data.num_threads,
      prefetch=config.data.prefetch))
  eval_set = test.fixed(config.eval_batches * global_batch, seed=config.seed + 7)

  # ---------------------------------------------------------------------------- model
  mesh = sharding.make_mesh()
  repl = sharding.replicated(mesh)
  data_sharding = sharding.batch_sharding(mesh)
  frame = model_build.behavior_frame(bcfg, behavior.normalizer)
  setup, state = diffusion_step.build(config, bcfg.model.width, behavior.model_def, frame)
  vae = jax.device_put(behavior.params, repl)
  ckpt = run.checkpointer(config.keep_checkpoints)

  def init_scaling(state):  # a new run; a resumed one keeps the scaling its checkpoint holds
    start = time.perf_counter()
    stats = code_stats(config, setup, vae, train)
    log.info('Code scaling from %d training codes (%s) in %.1f s.', stats['codes'],
             stats['rule'], time.perf_counter() - start)
    _write_code_stats(run, stats, behavior.step)
    return diffusion_step.init_stats(setup, state, stats['lo'], stats['hi'])

  state = loop.restore_or_init(ckpt, state, train_iter, config, run, init_scaling, repl)

  step_fn = jax.jit(functools.partial(diffusion_step.train_step, setup),
                    in_shardings=(repl, repl, data_sharding), out_shardings=(repl, repl),
                    donate_argnums=0)
  eval_key = jax.random.key(config.seed + 11)  # the same noise at every evaluation
  eval_fn = jax.jit(
      lambda state, vae, batch, index: diffusion_step.eval_step(
          setup, state, vae, batch, jax.random.fold_in(eval_key, index)),
      in_shardings=(repl, repl, data_sharding, repl), out_shardings=repl)

  ctx = Context('diffusion', bcfg, behavior.normalizer, None, None, global_batch, data_sharding,
                workdir=run.path,
                fns={'eval_step': lambda state, batch, index: eval_fn(state, vae, batch, index)},
                data={'eval': eval_set})

  def to_device(batch):
    return sharding.to_device_batch(
        {k: batch[k] for k in ('observation', 'poses', 'label')}, data_sharding)

  return loop.run(
      loop.Settings.from_config(config, 'diffusion', run.path, num_steps), state,
      lambda s, b: step_fn(s, vae, b), train_iter, to_device, ckpt,
      evaluators.Evaluators(config.evals, ctx), hooks)
