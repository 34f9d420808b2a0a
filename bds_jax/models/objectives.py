"""Objective pieces shared by every model's loss, so that the behavior trainer
(bds_jax/train/losses.py) and the appearance model's losses (bds_jax/models/appearance_losses.py)
apply one rule: models must not import trainers, so it lives here, below both.
"""

import jax.numpy as jnp


def dual_ascent(gamma, kl, info_budget: float, step_size: float):
  """One projected dual-ascent step on the KL multiplier: max(0, gamma + eta (KL - I)), which
  holds KL at the information budget I (reference spec §2.2, §4.3)."""
  return jnp.maximum(0.0, gamma + step_size * (kl - info_budget))
