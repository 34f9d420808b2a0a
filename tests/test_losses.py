"""Loss terms, the dual-ascent rule and the variant table."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from bds_jax.models import objectives
from bds_jax.train import losses
from configs import behavior


def test_kl_known_values():
  assert float(losses.gaussian_kl(jnp.zeros((3, 8)), jnp.zeros((3, 8)))) == pytest.approx(0.0)
  # KL(N(mu, 1) || N(0, 1)) = mu^2 / 2 per dim, summed over dims, averaged over the batch.
  mu = jnp.array([[1.0, 2.0], [0.0, 0.0]])
  assert float(losses.gaussian_kl(mu, jnp.zeros_like(mu))) == pytest.approx((0.5 + 2.0) / 2)
  # KL(N(0, s^2) || N(0, 1)) = -log s + (s^2 - 1) / 2.
  s = 2.0
  kl = losses.gaussian_kl(jnp.zeros((1, 1)), jnp.full((1, 1), np.log(s)))
  assert float(kl) == pytest.approx(-np.log(s) + (s * s - 1) / 2, rel=1e-6)


def test_kl_matches_monte_carlo():
  key = jax.random.key(0)
  mu = jax.random.normal(key, (1, 4))
  logstd = 0.3 * jax.random.normal(jax.random.fold_in(key, 1), (1, 4))
  z = mu + jnp.exp(logstd) * jax.random.normal(jax.random.fold_in(key, 2), (200_000, 4))
  log_q = jnp.sum(-0.5 * ((z - mu) / jnp.exp(logstd)) ** 2 - logstd, axis=-1)
  log_p = jnp.sum(-0.5 * z ** 2, axis=-1)
  assert float(jnp.mean(log_q - log_p)) == pytest.approx(float(losses.gaussian_kl(mu, logstd)),
                                                          abs=0.02)


def test_dual_ascent_rule():
  # KL above the budget raises gamma by eta * (KL - I); below lowers it; never below 0.
  # One rule for both models (the appearance model's scale: budget 1000, eta 1e-5).
  assert float(objectives.dual_ascent(0.5, 150.0, 100.0, 1e-3)) == pytest.approx(0.55)
  assert float(objectives.dual_ascent(0.5, 60.0, 100.0, 1e-3)) == pytest.approx(0.46)
  assert float(objectives.dual_ascent(0.01, 0.0, 100.0, 1e-3)) == 0.0
  np.testing.assert_allclose(objectives.dual_ascent(0.5, 1200.0, 1000.0, 1e-5), 0.5 + 2e-3)
  assert float(objectives.dual_ascent(1e-4, 0.0, 1000.0, 1e-5)) == 0.0


def test_adversarial_term_clamps():
  clamps = (0.45, 0.70)
  assert float(losses.adversarial_term(0.3, clamps)) == pytest.approx(0.6)
  assert float(losses.adversarial_term(0.5, clamps)) == pytest.approx(0.95)
  g = jax.grad(lambda l: losses.adversarial_term(l, clamps))
  # Effective weight 2, then 1, then 0 once the regressor loss exceeds the larger clamp.
  assert [float(g(v)) for v in (0.3, 0.5, 0.9)] == [2.0, 1.0, 0.0]
  assert float(jax.grad(lambda l: losses.adversarial_term(l, ()))(5.0)) == 1.0


def test_variants():
  cfg = behavior.get_config().loss
  ours = losses.loss_spec('ours', cfg)
  assert (ours.stochastic, ours.kl_mode, ours.adversary_weight) == (True, 'dual', 0.01)
  assert losses.loss_spec('ours_no_adversary', cfg).adversary_weight == 0.0
  cvae = losses.loss_spec('cvae', cfg)
  assert (cvae.kl_mode, cvae.kl_weight, cvae.adversary_weight) == ('fixed', 1.0, 0.0)
  cae = losses.loss_spec('cae', cfg)
  assert (cae.stochastic, cae.kl_mode) == (False, 'none')
  with pytest.raises(ValueError, match="variant='vae'.*ours"):
    losses.loss_spec('vae', cfg)


def test_unknown_preset_is_a_clear_error():
  with pytest.raises(ValueError, match="Unknown preset 'tiny'.*smoke"):
    behavior.get_config('tiny')
  assert isinstance(behavior.get_config('smoke'), ml_collections.ConfigDict)
