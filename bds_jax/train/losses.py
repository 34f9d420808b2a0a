"""Loss terms of the behavior model and the paper's baselines (reference spec §2.2, §2.5).

Main objective (upstream code; the paper's Eq. 5 with Gaussian likelihoods as MSE):
  L = w_rec * L_rec + gamma * KL - w_C * A(L_psi)
where L_rec is the MSE of the autoregressive reconstruction, KL the analytic
KL(q(z|x) || N(0, I)) summed over latent dims and averaged over the batch, L_psi the posture
regressor's MSE, and A(L) = sum_c min(L, c) over the clamps (0.45, 0.70) upstream, or A(L) = L
without clamps (the paper). gamma is a Lagrange multiplier that holds KL at the information
budget I_KL by dual ascent: gamma <- max(0, gamma + eta * (KL - I_KL))
(bds_jax/models/objectives.py, shared with the appearance model).
"""

import dataclasses

import jax.numpy as jnp

VARIANTS = ('ours', 'ours_no_adversary', 'cvae', 'cae')


@dataclasses.dataclass(frozen=True)
class LossSpec:
  """What a variant optimises. kl_mode: 'dual' (gamma by dual ascent), 'fixed', or 'none'."""
  stochastic: bool
  kl_mode: str
  kl_weight: float          # used when kl_mode == 'fixed'
  recon_weight: float
  adversary_weight: float
  adversary_clamps: tuple[float, ...]
  info_budget: float
  gamma_step: float
  recon_space: str = 'world'  # 'world' z-scores (the paper) or 'frame': the model's own frame
  adversary_space: str = 'world'  # the regressor's targets, in the same two spaces


def loss_spec(variant: str, loss_cfg) -> LossSpec:
  """Resolves a variant name and the `loss` config into a LossSpec.

  ours: the full model. ours_no_adversary: gamma_C = 0 (the regressor still trains, for
  monitoring). cvae: KL weight fixed (1), no adversary. cae: deterministic bottleneck z = mu,
  no KL, no adversary (not configurable upstream).
  """
  if variant not in VARIANTS:
    raise ValueError(f'model.variant={variant!r} is not one of {VARIANTS}.')
  clamps = tuple(float(c) for c in loss_cfg.adversary_clamps)
  common = dict(recon_weight=float(loss_cfg.recon_weight), adversary_clamps=clamps,
                info_budget=float(loss_cfg.info_budget), gamma_step=float(loss_cfg.gamma_step),
                kl_weight=float(loss_cfg.cvae_kl_weight),
                recon_space=str(loss_cfg.get('recon_space', 'world')),
                adversary_space=str(loss_cfg.get('adversary_space', 'world')))
  for field in ('recon_space', 'adversary_space'):
    if common[field] not in RECON_SPACES:
      raise ValueError(f'loss.{field}={common[field]!r} must be one of {RECON_SPACES}.')
  if variant == 'ours':
    return LossSpec(True, 'dual', adversary_weight=float(loss_cfg.adversary_weight), **common)
  if variant == 'ours_no_adversary':
    return LossSpec(True, 'dual', adversary_weight=0.0, **common)
  if variant == 'cvae':
    return LossSpec(True, 'fixed', adversary_weight=0.0, **common)
  return LossSpec(False, 'none', adversary_weight=0.0, **common)


RECON_SPACES = ('world', 'frame')


def reconstruction_loss(x_hat, target):
  """Plain MSE over all elements of (B, T, D)."""
  return jnp.mean(jnp.square(x_hat - target))


def gaussian_kl(mu, logstd):
  """KL(N(mu, sigma^2) || N(0, I)), summed over latent dims, averaged over the batch."""
  per_sample = jnp.sum(-logstd + 0.5 * (jnp.exp(2.0 * logstd) + jnp.square(mu)), axis=-1)
  return jnp.mean(per_sample - 0.5 * mu.shape[-1])


def regressor_mse(pred, target):
  return jnp.mean(jnp.square(pred - target))


def adversarial_term(reg_loss, clamps: tuple[float, ...]):
  """sum_c min(L_psi, c): with upstream's clamps the gradient vanishes once L_psi >= max(c)."""
  if not clamps:
    return reg_loss
  return sum(jnp.minimum(reg_loss, c) for c in clamps)
