"""Sampling behaviors: codes from the prior or the flow, decoded from any start posture.

  sampler = Sampler(behavior_run, flow_run)            # see bds_jax.inference
  z = sampler.sample_codes(8, jax.random.key(0), prior='flow')
  poses = sampler.decode(z, start_poses)               # metres, (8, T + 1, 17, 3)
  long = sampler.sample_loop(jax.random.key(1), start_pose, num_behaviors=4)

Poses in and out are in metres, (..., 17, 3); the model's normalisation is applied inside.
Sequences include their start frame and run at the model's frame rate (50 / frame_lag Hz).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from bds_jax import inference
from bds_jax import skeleton
from bds_jax.inference import BehaviorRun
from bds_jax.inference import FlowRun

PRIORS = ('flow', 'gaussian')


@functools.partial(jax.jit, static_argnums=(0, 4))
def _flow_codes(flow_def, params, buffers, key, n):
  return nnx.merge(flow_def, params, buffers).sample(key, n)


class Sampler:

  def __init__(self, behavior: BehaviorRun, flow: FlowRun | None = None):
    self.behavior = behavior
    self.flow = flow
    self.steps = behavior.config.data.seq_len
    self.fps = 50.0 / behavior.config.data.frame_lag
    self.code_dim = behavior.config.model.width

  def sample_codes(self, n: int, key, prior: str = 'flow'):
    """n behavior codes (n, Z): T^-1(u) with u ~ N(0, I) ('flow') or z ~ N(0, I) ('gaussian')."""
    if prior not in PRIORS:
      raise ValueError(f'prior={prior!r} must be one of {PRIORS}.')
    if prior == 'gaussian':
      return jax.random.normal(key, (n, self.code_dim))
    if self.flow is None:
      raise ValueError("prior='flow' needs a trained flow: pass a FlowRun to Sampler (train "
                       'one with configs/flow.py).')
    return _flow_codes(self.flow.flow_def, self.flow.params, self.flow.buffers, key, n)

  def decode(self, z, start_poses, steps: int | None = None) -> np.ndarray:
    """Re-enacts codes z (n, Z) from start poses (n, 17, 3) metres -> (n, steps + 1, 17, 3)."""
    start_poses = skeleton.check_poses(start_poses, 'start_poses')
    if start_poses.ndim != 3 or len(start_poses) != len(z):
      raise ValueError(f'start_poses must be (n, 17, 3) with n = {len(z)} codes, got '
                       f'{start_poses.shape}.')
    norm = self.behavior.normalizer
    start = norm.normalize(start_poses)
    out = inference.decode(self.behavior.model_def, self.behavior.params, jnp.asarray(z),
                           jnp.asarray(start), steps or self.steps)
    return norm.denormalize(np.concatenate([start[:, None], np.asarray(out)], axis=1))

  def sample_loop(self, key, start_pose, num_behaviors: int, prior: str = 'flow',
                  steps: int | None = None) -> np.ndarray:
    """One long sequence: each sampled behavior starts from the last pose of the previous one.

    Returns (num_behaviors * steps + 1, 17, 3) metres.
    """
    pose = skeleton.check_poses(start_pose, 'start_pose').reshape(1, skeleton.NUM_JOINTS, 3)
    parts = [pose]
    for k in jax.random.split(key, num_behaviors):
      seq = self.decode(self.sample_codes(1, k, prior), pose, steps)[0]
      parts.append(seq[1:])
      pose = seq[-1:]
    return np.concatenate(parts)
