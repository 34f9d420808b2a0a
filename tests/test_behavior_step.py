"""The alternating train step: gradient isolation, dual ascent and the variants."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from bds_jax.train import behavior_step
from configs import behavior

STEPS_PER_EPOCH = 100


def _setup(variant='ours', **loss):
  c = behavior.get_config('smoke')
  c.model.variant = variant
  for k, v in loss.items():
    setattr(c.loss, k, v)
  return behavior_step.build(c, STEPS_PER_EPOCH)


def _batch(batch=8, frames=11):
  return {'poses': jax.random.normal(jax.random.key(3), (batch, frames, 51))}


def _leaves_zero(tree):
  return all(not np.any(np.asarray(x)) for x in jax.tree.leaves(tree))


def _leaves_changed(a, b):
  return [not np.allclose(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))]


def test_regressor_step_reaches_only_the_regressor():
  setup, state = _setup()
  x, _ = behavior_step.split_batch(_batch()['poses'])

  def reg_loss_from_vae(vae):
    mu, _ = nnx.merge(setup.model_def, vae).posterior(x)
    _, _, reg_losses, _ = behavior_step.regressor_update(
        setup, state['reg'], state['reg_opt'], mu, x, jax.random.key(0))
    return reg_losses.sum()

  assert _leaves_zero(jax.grad(reg_loss_from_vae)(state['vae']))
  mu, _ = nnx.merge(setup.model_def, state['vae']).posterior(x)
  reg, _, _, _ = behavior_step.regressor_update(
      setup, state['reg'], state['reg_opt'], mu, x, jax.random.key(0))
  assert all(_leaves_changed(reg, state['reg']))


def test_adversarial_term_reaches_only_the_encoder_through_mu():
  # gamma starts at 0, so only the adversarial term is left. The regressor loss on random data
  # (~1) is above upstream's clamps, where the term has no gradient by design; use larger ones.
  setup, state = _setup(recon_weight=0.0, adversary_clamps=(10.0, 20.0))
  x, y = behavior_step.split_batch(_batch()['poses'])
  model = nnx.merge(setup.model_def, state['vae'])
  mu, logstd = model.posterior(x)
  grad_fn = jax.grad(functools.partial(behavior_step.main_loss, setup), argnums=(0, 3, 4),
                     has_aux=True)
  (g_vae, g_mu, g_logstd), _ = grad_fn(state['vae'], state['reg'], state['gamma'], mu, logstd,
                                       x, y, jnp.int32(3), jax.random.key(1))
  assert _leaves_zero(g_vae)        # the decoder gets nothing
  assert _leaves_zero(g_logstd)     # the adversary sees only the mean
  assert np.abs(g_mu).max() > 0
  # The encoder is pushed to *raise* the regressor's loss: the gradient is minus its gradient.
  g_psi_mu = jax.grad(lambda m: behavior_step.regressor_loss(setup, state['reg'], m, x, 3))(mu)
  want = -0.01 * 2 * np.asarray(g_psi_mu)
  # Two float32 graphs for one gradient: elements near zero carry round-off of the scale of the
  # largest ones, so the absolute tolerance is relative to that scale.
  np.testing.assert_allclose(g_mu, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
  # In the full step the main update leaves the regressor exactly as its own steps left it.
  new_state, _ = behavior_step.train_step(setup, state, _batch())
  mu0, _ = nnx.merge(setup.model_def, state['vae']).posterior(x)
  key = jax.random.fold_in(jax.random.wrap_key_data(state['rng']), state['step'])
  reg_only, _, _, _ = behavior_step.regressor_update(
      setup, state['reg'], state['reg_opt'], mu0, x, jax.random.split(key)[0])
  jax.tree.map(np.testing.assert_array_equal, new_state['reg'], reg_only)
  # ...and moves only encoder parameters (decoder untouched with recon and KL off).
  changed = jax.tree.map(lambda a, b: not np.array_equal(a, b), new_state['vae'], state['vae'])
  assert not any(jax.tree.leaves(changed['decoder']))
  assert any(jax.tree.leaves(changed['encoder']))


def test_step_applies_dual_ascent_to_gamma():
  setup, state = _setup(gamma_init=0.3, gamma_step=1e-2, info_budget=5.0)
  assert float(state['gamma']) == pytest.approx(0.3)
  new_state, m = behavior_step.train_step(setup, state, _batch())
  expected = max(0.0, 0.3 + 1e-2 * (float(m['kl']) - 5.0))
  assert float(new_state['gamma']) == pytest.approx(expected, rel=1e-6)
  assert int(new_state['step']) == 1


def test_cvae_fixes_gamma_and_cae_is_deterministic():
  setup, state = _setup('cvae')
  new_state, _ = behavior_step.train_step(setup, state, _batch())
  assert float(new_state['gamma']) == 1.0
  setup, state = _setup('cae')
  x, y = behavior_step.split_batch(_batch()['poses'])
  mu, logstd = nnx.merge(setup.model_def, state['vae']).posterior(x)
  losses = [behavior_step.main_loss(setup, state['vae'], state['reg'], state['gamma'], mu, logstd,
                                    x, y, 0, jax.random.key(k))[0] for k in range(2)]
  assert float(losses[0]) == float(losses[1])
  new_state, _ = behavior_step.train_step(setup, state, _batch())
  assert float(new_state['gamma']) == 0.0


def test_non_finite_loss_is_flagged_with_its_step():
  setup, state = _setup()
  step = jax.jit(functools.partial(behavior_step.train_step, setup))
  state, _ = step(state, _batch())
  assert int(state['bad_step']) == -1
  bad = {'poses': _batch()['poses'].at[0, 0, 0].set(jnp.nan)}
  state, _ = step(state, bad)
  state, _ = step(state, _batch())
  assert int(state['bad_step']) == 2
