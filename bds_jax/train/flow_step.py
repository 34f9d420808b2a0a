"""Pure, jittable steps of the flow prior's training (reference spec §3).

Train state (a dict pytree): step, params (trainable), buffers (the fixed permutations), opt,
rng, bad_step. The frozen behavior parameters are passed to each step as an argument (not
closed over, so they are not baked into the executable as constants).

Loss, as upstream: mean_B 0.5 ||T(z)||^2 - mean_B log|det dT/dz| over fresh posterior samples
z = mu + sigma * eps of the frozen encoder (a new eps every step).
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from bds_jax.models import build as model_build
from bds_jax.models import flow as flow_lib
from bds_jax.models.behavior import sample_posterior


@dataclasses.dataclass(frozen=True)
class Setup:
  flow_def: Any
  model_def: Any     # behavior model (frozen)
  tx: optax.GradientTransformation


def build(config, code_dim: int, model_def) -> tuple[Setup, dict]:
  flow_def, params, buffers = model_build.split_flow(model_build.create_flow(config, code_dim))
  tx = optax.adam(config.optim.lr, b1=config.optim.b1, b2=config.optim.b2)
  state = {
      'step': jnp.zeros((), jnp.int32),
      'params': params,
      'buffers': buffers,
      'opt': tx.init(params),
      'rng': jax.random.key_data(jax.random.key(config.seed + 1)),
      'bad_step': jnp.full((), -1, jnp.int32),
  }
  return Setup(flow_def, model_def, tx), state


def merge(setup: Setup, params, buffers) -> flow_lib.FlowPrior:
  return nnx.merge(setup.flow_def, params, buffers)


def posterior_codes(setup: Setup, vae, poses, key):
  """Posterior samples of the frozen encoder for windows (B, T+1, D): no gradient."""
  mu, logstd = nnx.merge(setup.model_def, vae).posterior(poses[:, :-1])
  return jax.lax.stop_gradient(sample_posterior(key, mu, logstd))


def init_actnorm(setup: Setup, state: dict, z) -> dict:
  """Data-dependent ActNorm initialisation on codes z; returns the updated state."""
  flow = merge(setup, state['params'], state['buffers'])
  flow_lib.initialize_actnorm(flow, z)
  params = nnx.to_pure_dict(nnx.state(flow, nnx.Param))
  return dict(state, params=params, opt=setup.tx.init(params))


def loss_fn(setup: Setup, params, buffers, z):
  flow = merge(setup, params, buffers)
  nll, log_det = flow_lib.nll_terms(flow, z)
  return nll - log_det, (nll, log_det)


def train_step(setup: Setup, state: dict, vae, batch: dict):
  key = jax.random.fold_in(jax.random.wrap_key_data(state['rng']), state['step'])
  k_z, k_ref = jax.random.split(key)
  z = posterior_codes(setup, vae, batch['poses'], k_z)
  (loss, (nll, log_det)), grads = jax.value_and_grad(
      lambda p: loss_fn(setup, p, state['buffers'], z), has_aux=True)(state['params'])
  updates, opt = setup.tx.update(grads, state['opt'], state['params'])
  params = optax.apply_updates(state['params'], updates)
  finite = jnp.isfinite(loss)
  bad_step = jnp.where((state['bad_step'] < 0) & ~finite, state['step'] + 1, state['bad_step'])
  # The NLL term of Gaussian noise itself (~D/2): what a perfect flow's nll approaches.
  noise = jax.random.normal(k_ref, z.shape)
  reference = 0.5 * jnp.mean(jnp.sum(noise * noise, axis=-1))
  metrics = {'loss': loss, 'nll': nll, 'log_det': log_det, 'reference_nll': reference,
             'grad_norm': optax.global_norm(grads)}
  return dict(state, step=state['step'] + 1, params=params, opt=opt, bad_step=bad_step), metrics


def eval_step(setup: Setup, state: dict, vae, batch: dict, key):
  """Loss terms (scalars) on posterior samples z of held-out windows, and the codes: T(z) as
  'flow_codes' and z as 'posterior_codes', each (B, Z)."""
  z = posterior_codes(setup, vae, batch['poses'], key)
  flow = merge(setup, state['params'], state['buffers'])
  u, log_det = flow.forward(z)
  nll = 0.5 * jnp.mean(jnp.sum(u * u, axis=-1))
  return {'loss': nll - jnp.mean(log_det), 'nll': nll, 'log_det': jnp.mean(log_det),
          'log_prob': jnp.mean(flow_lib.log_prob(flow, z)), 'flow_codes': u,
          'posterior_codes': z}
