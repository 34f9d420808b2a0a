"""Pure, jittable train and eval steps of the behavior model (reference spec §2.2).

The train state is a plain dict pytree (orbax and sharding need nothing else):
  step      int32   completed updates
  vae       params of the cVAE (encoder + decoder), a pure dict
  reg       params of the adversarial posture regressor p_psi
  vae_opt   optax state of the cVAE optimizer (holds the LR-schedule position)
  reg_opt   optax state of the regressor optimizer
  gamma     float32 KL Lagrange multiplier (upstream lost it on resume; we checkpoint it)
  rng       uint32 key data; the step's key is fold_in(rng, step)
  bad_step  int32   first step whose loss was NaN/inf, or -1

One step = `regressor_steps` Adam steps on psi (each on one random frame index t shared by the
batch, on stop_gradient(mu)), then one step on the cVAE whose adversarial term uses the updated
regressor and the last t, then dual ascent on gamma with the same batch's KL. The encoder runs
once: its VJP is taken at the start and pulled back with the main loss's gradient w.r.t.
(mu, logstd), so the adversarial gradient reaches the encoder only through mu.
"""

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from bds_jax.models import build as model_build
from bds_jax.models import objectives
from bds_jax.models.behavior import sample_posterior
from bds_jax.train import losses


@dataclasses.dataclass(frozen=True)
class Setup:
  """Everything static about a run: module structure, optimizers and the loss spec."""
  model_def: Any
  reg_def: Any
  vae_tx: optax.GradientTransformation
  reg_tx: optax.GradientTransformation
  spec: losses.LossSpec
  seq_len: int
  regressor_steps: int
  lr_schedule: Any  # step -> learning rate of the cVAE optimizer


def make_optimizers(config, steps_per_epoch: int):
  """Adam with upstream's MultiStep decay (x lr_decay at the given epochs) + regressor Adam."""
  o = config.optim
  boundaries = {int(e * steps_per_epoch): o.lr_decay for e in o.lr_milestones}
  schedule = optax.piecewise_constant_schedule(o.lr, boundaries)
  vae_tx = optax.adam(schedule, b1=o.b1, b2=o.b2)
  if o.grad_clip_norm:
    vae_tx = optax.chain(optax.clip_by_global_norm(o.grad_clip_norm), vae_tx)
  reg_tx = optax.adam(o.regressor_lr, b1=o.b1, b2=o.b2)
  return vae_tx, reg_tx, schedule


def build(config, steps_per_epoch: int, normalizer=None) -> tuple[Setup, dict]:
  """Creates the models and returns (Setup, initial train state).

  `normalizer` (the run's) is needed when config.model.frame is 'body'.
  """
  key = jax.random.key(config.seed)
  model, reg = model_build.create_models(config, jax.random.fold_in(key, 0), normalizer)
  model_def, vae = nnx.split(model)
  reg_def, reg_params = nnx.split(reg)
  vae, reg_params = nnx.to_pure_dict(vae), nnx.to_pure_dict(reg_params)
  vae_tx, reg_tx, lr_schedule = make_optimizers(config, steps_per_epoch)
  spec = losses.loss_spec(config.model.variant, config.loss)
  setup = Setup(model_def, reg_def, vae_tx, reg_tx, spec, config.data.seq_len,
                int(config.loss.regressor_steps), lr_schedule)
  gamma = spec.kl_weight if spec.kl_mode == 'fixed' else config.loss.gamma_init
  state = {
      'step': jnp.zeros((), jnp.int32),
      'vae': vae,
      'reg': reg_params,
      'vae_opt': vae_tx.init(vae),
      'reg_opt': reg_tx.init(reg_params),
      'gamma': jnp.asarray(gamma if spec.kl_mode != 'none' else 0.0, jnp.float32),
      'rng': jax.random.key_data(jax.random.fold_in(key, 1)),
      'bad_step': jnp.full((), -1, jnp.int32),
  }
  return setup, state


def regressor_loss(setup: Setup, reg_params, mu, x, t):
  """MSE of p_psi(mu, t) against the pose at frame t (shared by the batch)."""
  reg = nnx.merge(setup.reg_def, reg_params)
  target = jax.lax.dynamic_index_in_dim(x, t, axis=1, keepdims=False)
  pred = reg(mu, jnp.broadcast_to(t, mu.shape[:1]))
  return losses.regressor_mse(pred, target)


def regressor_update(setup: Setup, reg_params, reg_opt, mu, x, key):
  """`regressor_steps` Adam steps on psi; mu is treated as data (no gradient to the encoder)."""
  mu = jax.lax.stop_gradient(mu)

  def one(carry, k):
    params, opt = carry
    t = jax.random.randint(k, (), 0, setup.seq_len)
    loss, grads = jax.value_and_grad(functools.partial(regressor_loss, setup))(params, mu, x, t)
    updates, opt = setup.reg_tx.update(grads, opt, params)
    return (optax.apply_updates(params, updates), opt), (loss, t)

  keys = jax.random.split(key, setup.regressor_steps)
  (reg_params, reg_opt), (reg_losses, ts) = jax.lax.scan(one, (reg_params, reg_opt), keys)
  return reg_params, reg_opt, reg_losses, ts[-1]


def recon_loss(model, x_hat, y, start, space: str):
  """MSE in world z-scores, or with space 'frame' in the model's frame: a body-frame model's
  x and y in units of body_xy_scale about the start pose, so that a centimetre of motion counts
  the same in x, y and z (world z-scores divide x and y by where people stand, σ ≈ 0.9 m)."""
  if space == 'frame' and model.body_frame is not None:
    frame = model.body_frame.frame_of(start)
    x_hat, y = model.body_frame.encode(x_hat, frame), model.body_frame.encode(y, frame)
  return losses.reconstruction_loss(x_hat, y)


def adversary_targets(setup: Setup, vae, x):
  """What the posture regressor predicts: the normalised inputs x, or with adversary_space
  'frame' each window in its first frame's body frame (a body-frame code cannot carry where
  people stand or face, so world targets leave the regressor at the placement variance, above
  its clamps, and the adversary idle). Data only: the body frame has no parameters."""
  if setup.spec.adversary_space == 'frame':
    model = nnx.merge(setup.model_def, vae)
    if model.body_frame is not None:
      return jax.lax.stop_gradient(
          model.body_frame.encode(x, model.body_frame.frame_of(x[:, 0])))
  return x


def main_loss(setup: Setup, vae, reg_params, gamma, mu, logstd, x, y, t, key, x_reg=None):
  """Main objective given the encoder outputs; differentiate w.r.t. (vae, mu, logstd)."""
  spec = setup.spec
  model = nnx.merge(setup.model_def, vae)
  z = sample_posterior(key, mu, logstd) if spec.stochastic else mu
  x_hat = model.decode(z, x[:, 0], x.shape[1])
  rec = recon_loss(model, x_hat, y, x[:, 0], spec.recon_space)
  kl = losses.gaussian_kl(mu, logstd)
  kl_weight = jnp.zeros_like(gamma) if spec.kl_mode == 'none' else gamma
  loss = spec.recon_weight * rec + kl_weight * kl
  aux = {'recon': rec, 'kl': kl}
  if spec.adversary_weight and setup.regressor_steps:
    adv = regressor_loss(setup, reg_params, mu, x if x_reg is None else x_reg, t)
    loss = loss - spec.adversary_weight * losses.adversarial_term(adv, spec.adversary_clamps)
    aux['adversarial_regressor_loss'] = adv
  return loss, aux


def split_batch(poses):
  """(B, T+1, D) window -> inputs (frames 0..T-1) and targets (frames 1..T)."""
  return poses[:, :-1], poses[:, 1:]


def train_step(setup: Setup, state: dict, batch: dict):
  """One full update. Returns (new_state, metrics)."""
  x, y = split_batch(batch['poses'])
  key = jax.random.fold_in(jax.random.wrap_key_data(state['rng']), state['step'])
  k_reg, k_z = jax.random.split(key)

  def encode(vae):
    return nnx.merge(setup.model_def, vae).posterior(x)

  (mu, logstd), encoder_vjp = jax.vjp(encode, state['vae'])

  reg_params, reg_opt = state['reg'], state['reg_opt']
  t = jnp.zeros((), jnp.int32)
  metrics = {}
  x_reg = adversary_targets(setup, state['vae'], x)
  if setup.regressor_steps:
    reg_params, reg_opt, reg_losses, t = regressor_update(
        setup, reg_params, reg_opt, mu, x_reg, k_reg)
    metrics['regressor_loss'] = reg_losses[-1]

  grad_fn = jax.value_and_grad(functools.partial(main_loss, setup), argnums=(0, 3, 4),
                               has_aux=True)
  (loss, aux), (g_vae, g_mu, g_logstd) = grad_fn(
      state['vae'], reg_params, state['gamma'], mu, logstd, x, y, t, k_z, x_reg)
  (g_encoder,) = encoder_vjp((g_mu, g_logstd))
  grads = jax.tree.map(jnp.add, g_vae, g_encoder)
  updates, vae_opt = setup.vae_tx.update(grads, state['vae_opt'], state['vae'])
  vae = optax.apply_updates(state['vae'], updates)

  gamma = state['gamma']
  if setup.spec.kl_mode == 'dual':
    gamma = objectives.dual_ascent(gamma, aux['kl'], setup.spec.info_budget,
                                   setup.spec.gamma_step)

  finite = jnp.isfinite(loss)
  if setup.regressor_steps:
    finite &= jnp.all(jnp.isfinite(reg_losses))
  bad_step = jnp.where((state['bad_step'] < 0) & ~finite, state['step'] + 1, state['bad_step'])
  new_state = dict(state, step=state['step'] + 1, vae=vae, reg=reg_params, vae_opt=vae_opt,
                   reg_opt=reg_opt, gamma=gamma, bad_step=bad_step)
  metrics.update(aux, loss=loss, gamma=gamma, mu_abs=jnp.mean(jnp.abs(mu)),
                 logstd=jnp.mean(logstd), grad_norm=optax.global_norm(grads),
                 param_norm=optax.global_norm(vae))
  return new_state, metrics


def eval_step(setup: Setup, state: dict, batch: dict):
  """Self-reconstruction from the posterior mean, KL, and the regressor's MSE over all t."""
  x, y = split_batch(batch['poses'])
  model = nnx.merge(setup.model_def, state['vae'])
  mu, logstd = model.posterior(x)
  x_hat = model.decode(mu, x[:, 0], x.shape[1])
  ts = jnp.arange(setup.seq_len)
  x_reg = adversary_targets(setup, state['vae'], x)
  reg = jax.vmap(lambda t: regressor_loss(setup, state['reg'], mu, x_reg, t))(ts)
  return {'recon': recon_loss(model, x_hat, y, x[:, 0], setup.spec.recon_space),
          'kl': losses.gaussian_kl(mu, logstd),
          'regressor_loss': jnp.mean(reg)}
