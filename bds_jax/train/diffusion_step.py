"""Pure, jittable steps of the diffusion prior's training (stochastic-HMP spec §5.1, §5.3).

Train state (a dict pytree): step, params {'observation', 'denoiser'}, stats (the code
scaling), opt_obs, opt, ema (the denoiser's EMA parameters), rng, bad_step. The frozen
behavior parameters are an argument of each step, as in the flow's.

One step is either phase, chosen on device with `lax.cond` (both are compiled, one runs):
* step < optim.obs_steps: the observation autoencoder's reconstruction MSE (spec §5.1);
* otherwise the denoiser, with the observation encoder frozen (stop_gradient): each
  observation is repeated loss.k times with independent noise at one shared step t, and
  L = latent_weight · mean_B min_k |x̂₀ᵏ − x₀|₁ + motion_weight · mean_B min_k RMS(C(x̂₀ᵏ) − C(x₀)),
  where C decodes a code from the last observed pose with the frozen behavior decoder and
  C(x₀) is detached. x₀ is the behavior encoder's posterior sample μ + σ·ε of the window that
  starts at the last observed pose (BeLFusion samples too), min-max scaled to [−1, 1] with the
  statistics of the training split's codes (`bds_jax.train.diffusion`). With labels, each is
  replaced by the null label with probability model.label_dropout.
The EMA copies the denoiser until ema.start_step denoiser steps, then averages every
ema.every_steps steps with ema.decay.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from bds_jax.models import build as model_build
from bds_jax.models import diffusion as diffusion_lib
from bds_jax.models.behavior import sample_posterior


@dataclasses.dataclass(frozen=True)
class Setup:
  prior_def: Any
  model_def: Any      # behavior model (frozen)
  tx_obs: optax.GradientTransformation
  tx: optax.GradientTransformation
  config: Any         # the diffusion config (static: read for numbers only)

  @property
  def obs_steps(self) -> int:
    return int(self.config.optim.obs_steps)


def build(config, code_dim: int, model_def, frame) -> tuple[Setup, dict]:
  prior_def, params, stats = model_build.split_diffusion(
      model_build.create_diffusion(config, code_dim, frame))
  o = config.optim
  tx_obs = optax.amsgrad(optax.exponential_decay(o.obs_lr, o.obs_decay_every_steps,
                                                 o.obs_decay_rate, staircase=True))
  tx = optax.amsgrad(optax.exponential_decay(o.lr, o.decay_every_steps, o.decay_rate,
                                             staircase=True))
  state = {
      'step': jnp.zeros((), jnp.int32),
      'params': params,
      'stats': stats,
      'opt_obs': tx_obs.init(params['observation']),
      'opt': tx.init(params['denoiser']),
      'ema': jax.tree.map(jnp.copy, params['denoiser']),  # its own buffers (donation)
      'rng': jax.random.key_data(jax.random.key(config.seed + 1)),
      'bad_step': jnp.full((), -1, jnp.int32),
  }
  return Setup(prior_def, model_def, tx_obs, tx, config), state


def prior(setup: Setup, params, stats) -> diffusion_lib.DiffusionPrior:
  return nnx.merge(setup.prior_def, params, stats)


def sampling_params(state: dict) -> dict:
  """The parameters sampling uses: the observation encoder and the EMA denoiser."""
  return {'observation': state['params']['observation'], 'denoiser': state['ema']}


def posterior_codes(setup: Setup, vae, poses, key):
  """Posterior samples of the frozen behavior encoder for windows (B, T + 1, D)."""
  mu, logstd = nnx.merge(setup.model_def, vae).posterior(poses[:, :-1])
  return jax.lax.stop_gradient(sample_posterior(key, mu, logstd))


def init_stats(setup: Setup, state: dict, lo, hi) -> dict:
  """Sets the min-max code scaling from the per-dimension min and max (Z,) of training codes."""
  del setup
  return dict(state, stats={'code_lo': jnp.asarray(lo, jnp.float32),
                            'code_hi': jnp.asarray(hi, jnp.float32)})


def _motion_steps(setup: Setup, poses) -> int:
  return int(setup.config.loss.motion_steps) or poses.shape[1] - 1


def prior_losses(setup: Setup, params, stats, vae, batch, key, motion: bool = True):
  """(loss, metrics) of the denoiser on one batch (see the module docstring); without
  `motion`, the latent term alone."""
  c = setup.config
  k = int(c.loss.k)
  p = prior(setup, params, stats)
  k_z, k_t, k_noise, k_drop = jax.random.split(key, 4)
  z = posterior_codes(setup, vae, batch['poses'], k_z)
  x0 = p.scale(z)
  b = x0.shape[0]
  emb = jax.lax.stop_gradient(p.embed(batch['observation']))  # frozen encoder
  t = jax.random.randint(k_t, (b,), 0, len(p.abar))
  noise = jax.random.normal(k_noise, (b, k, x0.shape[-1]))
  abar = jnp.asarray(p.abar, jnp.float32)
  x_t = diffusion_lib.q_sample(abar, jnp.repeat(x0, k, axis=0), jnp.repeat(t, k),
                               noise.reshape(b * k, -1)).reshape(b, k, -1)
  label = None
  if p.num_labels:
    drop = jax.random.bernoulli(k_drop, c.model.label_dropout, (b,))
    label = jnp.where(drop, p.num_labels, batch['label'])
  pred = p.denoiser(x_t, t, emb, label)  # (b, k, Z): the k copies share t and the condition
  latent = jnp.mean(diffusion_lib.best_of_k_loss(pred, x0, 'l1'))
  metrics = {'latent': latent}
  loss = c.loss.latent_weight * latent
  if motion and c.loss.motion_weight > 0:
    vae_model = nnx.merge(setup.model_def, vae)
    steps = _motion_steps(setup, batch['poses'])
    start = batch['poses'][:, 0]
    target = jax.lax.stop_gradient(vae_model.decode(z, start, steps))
    decoded = vae_model.decode(p.unscale(pred.reshape(b * k, -1)), jnp.repeat(start, k, axis=0),
                               steps).reshape(b, k, steps, -1)
    motion = jnp.mean(diffusion_lib.best_of_k_loss(decoded, target, 'l2'))
    metrics['motion'] = motion
    loss = loss + c.loss.motion_weight * motion
  else:
    metrics['motion'] = jnp.zeros(())
  return loss, metrics


def obs_loss(setup: Setup, params, stats, obs):
  p = prior(setup, params, stats)
  x = p.observation_input(obs)
  return jnp.mean((p.observation.reconstruct(x) - x) ** 2)


def _ema(setup: Setup, state, params):
  e = setup.config.ema
  denoiser_step = state['step'] + 1 - setup.obs_steps
  started = denoiser_step >= e.start_step
  due = started & (denoiser_step % e.every_steps == 0)
  decay = jnp.where(due, e.decay, jnp.where(started, 1.0, 0.0))
  return jax.tree.map(lambda a, p: decay * a + (1.0 - decay) * p, state['ema'], params)


def train_step(setup: Setup, state: dict, vae, batch: dict):
  key = jax.random.fold_in(jax.random.wrap_key_data(state['rng']), state['step'])
  zero = jnp.zeros(())

  def obs_phase(state):
    params = state['params']
    loss, grads = jax.value_and_grad(
        lambda o: obs_loss(setup, dict(params, observation=o), state['stats'],
                           batch['observation']))(params['observation'])
    updates, opt_obs = setup.tx_obs.update(grads, state['opt_obs'], params['observation'])
    obs = optax.apply_updates(params['observation'], updates)
    metrics = {'loss': loss, 'obs_recon': loss, 'latent': zero, 'motion': zero,
               'grad_norm': optax.global_norm(grads)}
    return dict(state, params=dict(params, observation=obs), opt_obs=opt_obs), metrics

  def prior_phase(state):
    params = state['params']
    (loss, m), grads = jax.value_and_grad(
        lambda d: prior_losses(setup, dict(params, denoiser=d), state['stats'], vae, batch, key),
        has_aux=True)(params['denoiser'])
    updates, opt = setup.tx.update(grads, state['opt'], params['denoiser'])
    denoiser = optax.apply_updates(params['denoiser'], updates)
    metrics = {'loss': loss, 'obs_recon': zero, 'latent': m['latent'], 'motion': m['motion'],
               'grad_norm': optax.global_norm(grads)}
    return dict(state, params=dict(params, denoiser=denoiser), opt=opt,
                ema=_ema(setup, state, denoiser)), metrics

  new, metrics = jax.lax.cond(state['step'] < setup.obs_steps, obs_phase, prior_phase, state)
  finite = jnp.isfinite(metrics['loss'])
  bad_step = jnp.where((state['bad_step'] < 0) & ~finite, state['step'] + 1, state['bad_step'])
  return dict(new, step=state['step'] + 1, bad_step=bad_step), metrics


def best_of_k_error(setup: Setup, vae, codes, poses):
  """Per window, min over k of the mean per-frame L2 error (normalised units) of the decoded
  codes (B, K, Z) against the true behavior window poses (B, T + 1, D)."""
  b, k, _ = codes.shape
  steps = poses.shape[1] - 1
  start = poses[:, 0]
  decoded = nnx.merge(setup.model_def, vae).decode(
      codes.reshape(b * k, -1), jnp.repeat(start, k, axis=0), steps).reshape(b, k, steps, -1)
  err = jnp.linalg.norm(decoded - poses[:, None, 1:], axis=-1).mean(axis=-1)
  return jnp.min(err, axis=1)


def eval_step(setup: Setup, state: dict, vae, batch: dict, key):
  """Held-out latent loss with the EMA denoiser, the observation reconstruction error, and
  best-of-K decoding errors (normalised units) of DDIM samples ('sample_ade') beside N(0, I)
  codes ('gaussian_ade'), K = config.eval_samples. (The motion term is left out: its decoding
  costs compile time, and sample_ade measures the same thing on true futures.)"""
  params = sampling_params(state)
  k_loss, k_sample, k_gauss = jax.random.split(key, 3)
  _, m = prior_losses(setup, params, state['stats'], vae, batch, k_loss, motion=False)
  p = prior(setup, params, state['stats'])
  k = int(setup.config.eval_samples)
  codes = p.sample(k_sample, batch['observation'], k)
  gauss = jax.random.normal(k_gauss, codes.shape)
  return {'latent': m['latent'],
          'obs_recon': obs_loss(setup, state['params'], state['stats'], batch['observation']),
          'sample_ade': jnp.mean(best_of_k_error(setup, vae, codes, batch['poses'])),
          'gaussian_ade': jnp.mean(best_of_k_error(setup, vae, gauss, batch['poses']))}
