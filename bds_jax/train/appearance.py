"""Appearance-model trainer: `train_and_evaluate(config, workdir)` for the VUnet (spec §4).

The same shape as the behavior trainer, on the shared loop (`bds_jax.train.loop`: logging,
SIGTERM, NaN stop, checkpoints with the grain iterator, so resume is exact): data -> mesh ->
model and state -> steps -> restore -> evaluators -> loop. What is its own: image pairs
(`bds_jax.data.images`), the step (`appearance_step`), and the VGG19 weights of the perceptual
loss, which are optional: without them the likelihood is pixel L1 + SSIM, logged as a warning
and recorded as config.loss.likelihood.
"""

import functools
import logging
from typing import Callable, Sequence

import jax

from bds_jax import errors
from bds_jax import run_config
from bds_jax import run_layout
from bds_jax import runs
from bds_jax import sharding
from bds_jax.data import assembly
from bds_jax.data import images
from bds_jax.evaluation import common as evaluators
from bds_jax.evaluation.context import Context
from bds_jax.models import vgg
from bds_jax.train import appearance_step
from bds_jax.train import loop

log = logging.getLogger(__name__)

NonFiniteLossError = loop.NonFiniteLossError


def load_likelihood(config):
  """(VGG19 weights or None, the likelihood's name) from config.loss.vgg_weights."""
  if config.loss.vgg_weights:
    return vgg.load_vgg19(config.loss.vgg_weights), 'vgg19'
  log.warning('=' * 78 + '\nloss.vgg_weights is empty: the likelihood is pixel L1 + SSIM, NOT '
              "upstream's VGG19 perceptual loss.\nPass --config.loss.vgg_weights=FILE.npz "
              '(bds_jax/models/vgg.py says how to make it) to train as upstream.\n' + '=' * 78)
  return None, 'l1_ssim'


def train_and_evaluate(config, workdir: str,
                       hooks: Sequence[Callable[[int, dict], None]] = ()) -> loop.TrainResult:
  """Trains (or resumes) the appearance model in `workdir`; returns the final state."""
  config = runs.absolute_paths(config, ('data.data_dir', 'data.manual_dir', 'loss.vgg_weights'))
  vgg_weights, config.loss.likelihood = load_likelihood(config)  # recorded in config.json
  run = run_config.open_for_training(config, workdir)

  # ---------------------------------------------------------------------------- data
  d = config.data
  train_set = images.load_split(d, d.train_split, **images.model_inputs(config.model))
  eval_set = images.load_split(d, d.eval_split, **images.model_inputs(config.model))
  if train_set.image_size != config.model.image_size:
    raise ValueError(f'model.image_size={config.model.image_size} but {d.name} '
                     f'({d.builder_config or "default"}) has {train_set.image_size} px images.')
  if train_set.layout.num_joints != config.model.num_keypoints:
    raise errors.ConfigError(
        f'model.num_keypoints={config.model.num_keypoints} but {d.name} has '
        f'{train_set.layout.num_joints} keypoints per image: pass '
        f'--config.model.num_keypoints={train_set.layout.num_joints}.')
  global_batch = d.batch_size
  local_batch = sharding.per_process_batch_size(global_batch)
  steps_per_epoch = assembly.steps_per_epoch(len(train_set), global_batch)
  num_steps = assembly.total_steps(config, steps_per_epoch)
  log.info('%d train frames of %d people (%d steps/epoch), %d eval frames; training %d '
           'steps.', len(train_set), len(train_set.people), steps_per_epoch, len(eval_set),
           num_steps)
  train_iter = iter(images.train_dataset(
      train_set, local_batch, seed=config.seed, sampling=d.sampling, num_threads=d.num_threads,
      prefetch=d.prefetch))
  eval_data = images.fixed_pairs(eval_set, config.eval_batches * global_batch, config.seed + 7)
  figure_data = {k: v[:global_batch] for k, v in eval_data.items()}

  # ---------------------------------------------------------------------------- mesh, model
  mesh = sharding.make_mesh()
  repl = sharding.replicated(mesh)
  data_sharding = sharding.batch_sharding(mesh)
  vgg_weights = jax.device_put(vgg_weights, repl)
  chance = run.load_or_compute_adversary_chance(train_set.keypoints / train_set.image_size)
  clamp = float(config.loss.adversary_clamp) or chance
  log.info('Adversary clamp %.4f (%s); chance level of the training keypoints %.4f (predicting '
           'their mean pose; %s).', clamp, 'loss.adversary_clamp' if config.loss.adversary_clamp
           else 'the chance level', chance, run_layout.ADVERSARY_CHANCE_FILE)
  # The LR decays over the steps the run was created with (config.json is written once):
  # num_steps is safe to change on resume, and a longer run continues the decayed rate.
  created_steps = assembly.total_steps(run.config, steps_per_epoch)
  if created_steps != num_steps:
    log.warning('The learning rate decays to 0 over the %d steps this run was created with '
                '(not num_steps=%d): steps past that train with a learning rate of 0.',
                created_steps, num_steps)
  setup, state = appearance_step.build(config, len(train_set), chance, created_steps)
  state = jax.device_put(state, repl)
  step_fn = jax.jit(functools.partial(appearance_step.train_step, setup),
                    in_shardings=(repl, data_sharding, repl), out_shardings=(repl, repl),
                    donate_argnums=0)
  eval_step = jax.jit(functools.partial(appearance_step.eval_step, setup),
                      in_shardings=(repl, data_sharding), out_shardings=repl)
  figure_step = jax.jit(functools.partial(appearance_step.figure_step, setup),
                        in_shardings=(repl, data_sharding), out_shardings=data_sharding)

  def train_step(state, batch):
    return step_fn(state, batch, vgg_weights)

  # ---------------------------------------------------------------------------- restore
  ckpt = run.checkpointer(config.keep_checkpoints)
  state = loop.restore_latest(ckpt, state, train_iter, config, run) or state

  # ---------------------------------------------------------------------------- evaluators
  def make_appearance(state):  # the evaluated state's model, for evaluators that need one
    return runs.Appearance(run, int(state['step']), setup.model_def, state['params'],
                           setup.reg_def, state['reg'])

  ctx = Context('appearance', config, None, train_set, eval_set, global_batch, data_sharding,
                workdir=run.path, make_appearance=make_appearance,
                fns={'eval_step': lambda state, batch, index: eval_step(state, batch),
                     'figure_step': lambda state, batch, index: figure_step(state, batch)},
                data={'eval': eval_data, 'figure': figure_data})

  def to_device(batch):  # only what the step reads is copied to devices
    return sharding.to_device_batch({k: batch[k] for k in appearance_step.TRAIN_INPUTS},
                                    data_sharding)

  return loop.run(
      loop.Settings.from_config(config, 'appearance', run.path, num_steps, setup.lr_schedule),
      state, train_step, train_iter, to_device, ckpt, evaluators.Evaluators(config.evals, ctx),
      hooks)
