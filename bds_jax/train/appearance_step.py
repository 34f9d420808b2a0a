"""Pure, jittable train and eval steps of the appearance model (reference spec §4.3).

The train state is a plain dict pytree, as the behavior model's:
  step      int32   completed updates
  params    the appearance model (VUnet), a pure dict
  reg       the adversarial keypoint regressor
  opt       Adam state of the model (holds the linear-decay position)
  reg_opt   Adam state of the regressor
  disc, disc_opt   the patch discriminator and its Adam state (only with loss.gan_weight or
            loss.feature_matching_weight > 0)
  gamma     float32 KL multiplier (dual ascent; checkpointed, as upstream kept it too)
  rng       uint32 key data; the step's key is fold_in(rng, step)
  bad_step  int32   first step whose loss was NaN/inf, or -1

One step = one training-mode pass of the appearance encoder; `regressor_steps` Adam steps of
the regressor on its means (stop_gradient: they are data to it); then one Adam step of the
model on `appearance_losses.main_loss`, whose adversarial term uses the updated regressor
(held fixed) and reaches the encoder through the means; then dual ascent on gamma. The
encoder's forward pass is shared by the two updates through jax.vjp (upstream ran the encoder
again under no_grad for each regressor step). VGG19 weights, when used, are an argument: as a
jit constant their 80 MB would be baked into the program.
"""

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from bds_jax.models import appearance_losses as al
from bds_jax.models import build as model_build

TRAIN_INPUTS = ('image', 'stickman', 'appearance', 'appearance_keypoints', 'person_mask')


@dataclasses.dataclass(frozen=True)
class Setup:
  """Everything static about a run: module structure, optimizers and the loss config."""
  model_def: Any
  reg_def: Any
  tx: optax.GradientTransformation
  reg_tx: optax.GradientTransformation
  loss: al.LossConfig
  regressor_steps: int
  lr_schedule: Any  # step -> learning rate of the model's optimizer
  disc_def: Any = None  # the patch discriminator's graph, or None without one
  disc_tx: optax.GradientTransformation | None = None


def loss_config(config, chance: float | None = None) -> al.LossConfig:
  """The loss settings; the adversary's clamp is config.loss.adversary_clamp, or `chance`
  (the chance level of the run's training keypoints) where that is 0."""
  l = config.loss
  clamp = float(l.adversary_clamp) or chance
  if not clamp:
    raise ValueError('loss.adversary_clamp=0 asks for the chance level of the training '
                     'keypoints, and none was given.')
  return al.LossConfig(
      likelihood_weights=tuple(float(w) for w in l.likelihood_weights),
      ll_weight=float(l.ll_weight), ssim_weight=float(l.ssim_weight),
      n_init_batches=int(l.n_init_batches), info_budget=float(l.info_budget),
      gamma_step=float(l.gamma_step), adversary_weight=float(l.adversary_weight),
      adversary_clamp=float(clamp), person_weight=float(l.person_weight),
      gan_weight=float(l.gan_weight),
      feature_matching_weight=float(l.feature_matching_weight))


def decay_steps(num_steps: int, num_frames: int, batch: int) -> float:
  """Upstream's LR horizon: whole epochs covering num_steps, ⌈n·B/N⌉·N/B steps."""
  return math.ceil(num_steps * batch / num_frames) * num_frames / batch


def make_optimizers(config, horizon: float):
  """Adam with linear decay of the LR to 0 over `horizon` steps, and the regressor's Adam."""
  o = config.optim
  schedule = optax.linear_schedule(o.lr, 0.0, max(1, int(round(horizon))))
  tx = optax.adam(schedule, b1=o.b1, b2=o.b2)
  reg_tx = optax.adam(o.regressor_lr)  # upstream: torch's default betas
  return tx, reg_tx, schedule


def build(config, num_frames: int, chance: float | None = None,
          horizon_steps: int | None = None) -> tuple[Setup, dict]:
  """Creates the models and returns (Setup, initial train state); `num_frames` is the size
  of the training split (the LR horizon is in its epochs), `chance` the adversary's chance
  level there (the clamp where config.loss.adversary_clamp is 0), `horizon_steps` the
  num_steps the LR decays over (default config.num_steps; a resumed run passes the value it
  was created with, so a longer run continues the decayed rate)."""
  key = jax.random.key(config.seed)
  # 'rbg' bits for the initialisation: created eagerly, threefry's ~300 small ops took ~30 s to
  # compile on XLA:CPU (rbg values are fixed per seed and backend, not across backends).
  model, reg = model_build.create_appearance(config, jax.random.key(config.seed, impl='rbg'))
  (model_def, params), (reg_def, reg_params) = nnx.split(model), nnx.split(reg)
  params, reg_params = nnx.to_pure_dict(params), nnx.to_pure_dict(reg_params)
  horizon = decay_steps(config.num_steps if horizon_steps is None else horizon_steps,
                       num_frames, config.data.batch_size)
  tx, reg_tx, schedule = make_optimizers(config, horizon)
  disc = model_build.create_discriminator(
      config, jax.random.fold_in(jax.random.key(config.seed, impl='rbg'), 2))
  setup = Setup(model_def, reg_def, tx, reg_tx, loss_config(config, chance),
                int(config.loss.regressor_steps), schedule)
  state = {
      'step': jnp.zeros((), jnp.int32),
      'params': params,
      'reg': reg_params,
      'opt': tx.init(params),
      'reg_opt': reg_tx.init(reg_params),
      'gamma': jnp.zeros((), jnp.float32),
      'rng': jax.random.key_data(jax.random.fold_in(key, 1)),
      'bad_step': jnp.full((), -1, jnp.int32),
  }
  if disc is not None:
    disc_def, disc_params = nnx.split(disc)
    disc_params = nnx.to_pure_dict(disc_params)
    o = config.optim
    disc_tx = optax.adam(o.disc_lr, b1=o.disc_b1, b2=o.disc_b2)
    setup = dataclasses.replace(setup, disc_def=disc_def, disc_tx=disc_tx)
    state.update(disc=disc_params, disc_opt=disc_tx.init(disc_params))
  return setup, state


def regressor_update(setup: Setup, reg_params, reg_opt, means, keypoints):
  """`regressor_steps` Adam steps of the regressor on fixed means; returns its losses."""
  loss_fn = functools.partial(al.regressor_loss, reg_def=setup.reg_def)

  def one(carry, _):
    params, opt = carry
    loss, grads = jax.value_and_grad(loss_fn)(params, means, keypoints)
    updates, opt = setup.reg_tx.update(grads, opt, params)
    return (optax.apply_updates(params, updates), opt), loss

  (reg_params, reg_opt), losses = jax.lax.scan(one, (reg_params, reg_opt), None,
                                               length=setup.regressor_steps)
  return reg_params, reg_opt, losses


def train_step(setup: Setup, state: dict, batch: dict, vgg_weights=None):
  """One full update. Returns (new_state, metrics)."""
  key = jax.random.fold_in(jax.random.wrap_key_data(state['rng']), state['step'])
  k_encode, k_decode = jax.random.split(key)  # as appearance_losses.main_loss splits its key
  batch = {k: batch[k] for k in TRAIN_INPUTS}
  params = state['params']

  # One encoder pass serves both updates: its means are the regressor's data, and its vjp
  # carries the main loss's gradient back through the encoder (the same as differentiating
  # main_loss, which tests check, without running the encoder a second time).
  codes, encoder_vjp = jax.vjp(
      lambda p: al.encode(p, batch['appearance'], k_encode, model_def=setup.model_def), params)
  reg_params, reg_opt, metrics = state['reg'], state['reg_opt'], {}
  finite = jnp.array(True)
  if setup.regressor_steps:
    means = [jax.lax.stop_gradient(m) for m in codes[0]]
    reg_params, reg_opt, reg_losses = regressor_update(setup, reg_params, reg_opt, means,
                                                       batch['appearance_keypoints'])
    metrics['regressor_train_loss'] = reg_losses[-1]
    finite &= jnp.all(jnp.isfinite(reg_losses))

  loss_fn = functools.partial(al.loss_from_codes, model_def=setup.model_def,
                              reg_def=setup.reg_def, cfg=setup.loss,
                              disc_params=state.get('disc'), disc_def=setup.disc_def)
  (loss, aux), (grads, code_grads) = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(
      params, codes, reg_params, vgg_weights, state['gamma'], state['step'], batch, k_decode)
  grads = jax.tree.map(jnp.add, grads, encoder_vjp(code_grads)[0])
  updates, opt = setup.tx.update(grads, state['opt'], params)
  params = optax.apply_updates(params, updates)
  gamma = al.update_gamma(state['gamma'], aux['kl'], state['step'], setup.loss)
  disc_state = {}
  if setup.disc_def is not None:  # the discriminator's hinge step on this step's output
    d_loss, d_grads = jax.value_and_grad(functools.partial(
        al.discriminator_loss, disc_def=setup.disc_def))(
            state['disc'], batch['image'], aux['reconstruction'], batch['stickman'])
    d_updates, disc_opt = setup.disc_tx.update(d_grads, state['disc_opt'], state['disc'])
    disc_state = {'disc': optax.apply_updates(state['disc'], d_updates), 'disc_opt': disc_opt}
    metrics['discriminator_loss'] = d_loss
    finite &= jnp.isfinite(d_loss)

  finite &= jnp.isfinite(loss)
  bad_step = jnp.where((state['bad_step'] < 0) & ~finite, state['step'] + 1, state['bad_step'])
  new_state = dict(state, step=state['step'] + 1, params=params, reg=reg_params, opt=opt,
                   reg_opt=reg_opt, gamma=gamma, bad_step=bad_step, **disc_state)
  scalars = {k: v for k, v in aux.items() if k not in ('means', 'reconstruction')}
  metrics.update(scalars, loss=loss, gamma=gamma, grad_norm=optax.global_norm(grads),
                 param_norm=optax.global_norm(params))
  return new_state, metrics


def _model(setup: Setup, state: dict):
  return nnx.merge(setup.model_def, state['params'])


def eval_step(setup: Setup, state: dict, batch: dict):
  """Deterministic (posterior means, no dropout) reconstruction and same-person transfer.

  Transfer: the appearance of another frame of the same person rendered in the target's pose;
  the target image is its ground truth. SSIM on [0, 1] images, as spec §5.7.
  """
  model = _model(setup, state)
  unit = lambda x: (x + 1.0) * 0.5
  rec, means, logstds = model(batch['appearance'], batch['stickman'])
  transfer, _, _ = model(batch['paired_appearance'], batch['stickman'])
  reg = nnx.merge(setup.reg_def, state['reg'])
  return {
      'recon_l1': jnp.mean(jnp.abs(rec - batch['image'])),
      'recon_ssim': jnp.mean(al.ssim(unit(rec), unit(batch['image']))),
      'transfer_l1': jnp.mean(jnp.abs(transfer - batch['image'])),
      'transfer_ssim': jnp.mean(al.ssim(unit(transfer), unit(batch['image']))),
      'kl': al.latent_kl(means, logstds),
      'regressor_loss': al.keypoint_l2(reg(means), batch['appearance_keypoints']),
  }


def figure_step(setup: Setup, state: dict, batch: dict):
  """Reconstructions, and transfers of each appearance to the next item's pose (another
  person in a `fixed_pairs` set); images in [-1, 1]."""
  model = _model(setup, state)
  rec, _, _ = model(batch['appearance'], batch['stickman'])
  transfer, _, _ = model(batch['appearance'], jnp.roll(batch['stickman'], -1, axis=0))
  return {'reconstruction': rec, 'transfer': transfer}
