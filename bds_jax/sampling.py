"""Sampling behaviors: codes from the prior or the flow, decoded from any start posture.

  sampler = runs.Run('runs/demo').sampler()            # see bds_jax.runs
  z = sampler.sample_codes(8, jax.random.key(0), prior='flow')
  poses = sampler.decode(z, start_poses)               # metres, (8, T + 1, 17, 3)
  long = sampler.sample_loop(jax.random.key(1), start_pose, num_behaviors=4)

A Sampler holds a behavior model's graph, parameters and normalizer (and optionally a flow
prior's), not a run: trainers build one from their current state, loaders from a checkpoint.
Poses in and out of the metre-space methods are (..., 17, 3); the normalisation is applied
inside. `posterior` and `decode_normalized` work on normalised poses, for evaluation and
figures. Sequences include their start frame and run at the model's frame rate
(50 / frame_lag Hz). Inputs are put on device explicitly and outputs fetched explicitly, so the
Sampler also runs under `jax.transfer_guard('disallow')`.
"""

import functools

import jax
import numpy as np
from flax import nnx

from bds_jax import skeleton
from bds_jax.data.normalization import Normalizer

PRIORS = ('flow', 'gaussian')


@functools.partial(jax.jit, static_argnums=(0,))
def posterior(model_def, params, x):
  """(mu, logstd) of normalised sequences x (B, T, D) under a behavior model's parameters."""
  return nnx.merge(model_def, params).posterior(x)


@functools.partial(jax.jit, static_argnums=(0, 4))
def decode(model_def, params, z, start, steps: int):
  """Normalised re-enactment (B, steps, D) of codes z (B, Z) from start postures (B, D)."""
  return nnx.merge(model_def, params).decode(z, start, steps)


@functools.partial(jax.jit, static_argnums=(0, 4))
def flow_codes(flow_def, params, buffers, key, n: int):
  """n codes T^-1(u), u ~ N(0, I), of a flow prior."""
  return nnx.merge(flow_def, params, buffers).sample(key, n)


class Sampler:
  """A behavior model (and optionally its flow prior) ready to encode, decode and sample.

  Args:
    model_def: the behavior model's nnx graph (`nnx.split`).
    params: its parameters (a pure dict).
    normalizer: the train-split normalization the model was trained with.
    seq_len: model frames per behavior (config.data.seq_len).
    frame_lag: raw 50 Hz frames per model frame (config.data.frame_lag).
    flow_def: the flow prior's nnx graph, or None.
    flow_state: the flow's {'params': ..., 'buffers': ...} (pure dicts), or None.
  """

  def __init__(self, model_def, params, normalizer: Normalizer, *, seq_len: int,
               frame_lag: int, flow_def=None, flow_state: dict | None = None):
    if (flow_def is None) != (flow_state is None):
      raise ValueError('Pass both flow_def and flow_state, or neither.')
    # Host copies (a trainer's figures) go to the default device once; device arrays stay put.
    self.model_def = model_def
    self.params = jax.device_put(params)
    self.normalizer = normalizer
    self.flow_def = flow_def
    self.flow_state = jax.device_put(flow_state)
    self.steps = int(seq_len)
    self.fps = 50.0 / frame_lag
    self.code_dim = int(nnx.merge(model_def, params).width)

  @property
  def has_flow(self) -> bool:
    return self.flow_def is not None

  def posterior(self, x):
    """Normalised sequences x (n, T, D) -> (mu, logstd), each (n, Z), on device."""
    return posterior(self.model_def, self.params, jax.device_put(x))

  def decode_normalized(self, z, start, steps: int | None = None):
    """Codes z (n, Z) from normalised start postures (n, D) -> (n, steps, D), on device."""
    return decode(self.model_def, self.params, jax.device_put(z), jax.device_put(start),
                  steps or self.steps)

  def sample_codes(self, n: int, key, prior: str = 'flow'):
    """n behavior codes (n, Z): T^-1(u) with u ~ N(0, I) ('flow') or z ~ N(0, I) ('gaussian')."""
    if prior not in PRIORS:
      raise ValueError(f'prior={prior!r} must be one of {PRIORS}.')
    if prior == 'gaussian':
      return jax.random.normal(key, (n, self.code_dim))
    if not self.has_flow:
      raise ValueError("prior='flow' needs a trained flow: give the Sampler flow_def and "
                       'flow_state (train one with configs/flow.py).')
    return flow_codes(self.flow_def, self.flow_state['params'], self.flow_state['buffers'], key,
                      n)

  def decode(self, z, start_poses, steps: int | None = None) -> np.ndarray:
    """Re-enacts codes z (n, Z) from start poses (n, 17, 3) metres -> (n, steps + 1, 17, 3)."""
    start_poses = skeleton.check_poses(start_poses, 'start_poses')
    if start_poses.ndim != 3 or len(start_poses) != len(z):
      raise ValueError(f'start_poses must be (n, 17, 3) with n = {len(z)} codes, got '
                       f'{start_poses.shape}.')
    start = self.normalizer.normalize(start_poses)
    out = jax.device_get(self.decode_normalized(z, start, steps))
    return self.normalizer.denormalize(np.concatenate([start[:, None], out], axis=1))

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
