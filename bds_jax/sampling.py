"""Sampling behaviors: codes from the prior or the flow, decoded from any start posture.

  sampler = runs.Run('runs/demo').sampler()            # see bds_jax.runs
  z = sampler.sample_codes(8, jax.random.key(0), prior='flow')
  poses = sampler.decode(z, start_poses)               # metres, (8, T + 1, 17, 3)
  long = sampler.sample_loop(jax.random.key(1), start_pose, num_behaviors=4)
  # with a diffusion prior (runs/demo/diffusion): codes, or futures, given observed frames
  z = sampler.sample_codes(50, key, prior='diffusion', observation=obs)  # (50, Z)
  futures = sampler.predict(obs, 50, key)              # (50, T + 1, 17, 3) metres
  # the action-conditioned prior (trained with model.use_labels=True) asked for class 3
  labelled = runs.Run('runs/demo/diffusion_labels').sampler()
  futures = labelled.predict(obs, 50, key, label=3, guidance=2.0)

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
import jax.numpy as jnp
import numpy as np
from flax import nnx

from bds_jax import skeleton
from bds_jax.data.normalization import Normalizer

PRIORS = ('flow', 'gaussian', 'diffusion')


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


@functools.partial(jax.jit, static_argnums=(0, 5))
def diffusion_codes(prior_def, params, stats, key, obs, k: int, label, guidance):
  """k codes per normalised observation (B, F, D) of a diffusion prior: (B, k, Z)."""
  return nnx.merge(prior_def, params, stats).sample(key, obs, k, label, guidance)


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
    diffusion_def: the diffusion prior's nnx graph, or None.
    diffusion_state: its {'params': ..., 'stats': ...} (pure dicts; EMA denoiser), or None.
  """

  def __init__(self, model_def, params, normalizer: Normalizer, *, seq_len: int,
               frame_lag: int, flow_def=None, flow_state: dict | None = None,
               diffusion_def=None, diffusion_state: dict | None = None):
    if (flow_def is None) != (flow_state is None):
      raise ValueError('Pass both flow_def and flow_state, or neither.')
    if (diffusion_def is None) != (diffusion_state is None):
      raise ValueError('Pass both diffusion_def and diffusion_state, or neither.')
    # Host copies (a trainer's figures) go to the default device once; device arrays stay put.
    self.model_def = model_def
    self.params = jax.device_put(params)
    self.normalizer = normalizer
    self.flow_def = flow_def
    self.flow_state = jax.device_put(flow_state)
    self.diffusion_def = diffusion_def
    self.diffusion_state = jax.device_put(diffusion_state)
    self.steps = int(seq_len)
    self.frame_lag = int(frame_lag)
    self.fps = 50.0 / frame_lag
    self.code_dim = int(nnx.merge(model_def, params).width)

  @property
  def has_flow(self) -> bool:
    return self.flow_def is not None

  @property
  def has_diffusion(self) -> bool:
    return self.diffusion_def is not None

  def _diffusion(self):
    if not self.has_diffusion:
      raise ValueError("prior='diffusion' needs a trained diffusion prior: give the Sampler "
                       'diffusion_def and diffusion_state (train one with configs/diffusion.py).')
    return nnx.merge(self.diffusion_def, self.diffusion_state['params'],
                     self.diffusion_state['stats'])

  @property
  def observed_frames(self) -> int:
    """Observed frames (at 50 Hz) the diffusion prior conditions on."""
    return self._diffusion().observed

  @property
  def num_labels(self) -> int:
    """Classes the diffusion prior can be asked for (0: no label conditioning)."""
    return self._diffusion().num_labels

  def _labels(self, label, b: int):
    if label is None:
      return None
    n = self.num_labels
    if n == 0:
      raise ValueError('label= given, but this diffusion prior was trained without labels '
                       '(model.use_labels=False); the action-conditioned one is its own run: '
                       "runs.Run('DIR/diffusion_labels').sampler().")
    lab = np.broadcast_to(np.asarray(label), (b,))
    if not np.issubdtype(lab.dtype, np.integer) or lab.min() < 0 or lab.max() >= n:
      raise ValueError(f'label={label!r}: must be integer class ids in [0, {n}) (the behavior '
                       "run's dataset classes).")
    return jax.device_put(lab.astype(np.int32))

  def diffusion_codes_normalized(self, obs, k: int, key, label=None, guidance: float = 1.0):
    """k codes per normalised observation (B, F, 51) -> (B, k, Z), on device.

    label: None (unguided), an int or (B,) ints; guidance: the classifier-free guidance
    scale (1: the conditional model; larger: stronger).
    """
    p = self._diffusion()
    obs = np.asarray(obs, np.float32)
    if obs.ndim != 3 or obs.shape[1:] != (p.observed, p.pose_dim):
      raise ValueError(f'observation: expected (batch, {p.observed}, {p.pose_dim}) normalised '
                       f'poses ({p.observed} frames at 50 Hz), got {obs.shape}.')
    return diffusion_codes(self.diffusion_def, self.diffusion_state['params'],
                           self.diffusion_state['stats'], key, jax.device_put(obs), int(k),
                           self._labels(label, len(obs)), jnp.float32(guidance))

  def _observation(self, observation) -> np.ndarray:
    """Metre observation (F, 17, 3) or (B, F, 17, 3) -> normalised (B, F, 51)."""
    obs = np.asarray(observation, np.float32)
    f = self.observed_frames
    if obs.ndim not in (3, 4) or obs.shape[-3:] != (f, skeleton.NUM_JOINTS, 3):
      raise ValueError(f'observation: expected ({f}, {skeleton.NUM_JOINTS}, 3) or (batch, {f}, '
                       f'{skeleton.NUM_JOINTS}, 3) poses in metres ({f} frames at 50 Hz, '
                       f'{skeleton.NUM_JOINTS} joints), got {obs.shape}.')
    obs = skeleton.check_poses(obs, 'observation')
    return self.normalizer.normalize(obs.reshape(-1, f, skeleton.NUM_JOINTS, 3))

  def posterior(self, x):
    """Normalised sequences x (n, T, D) -> (mu, logstd), each (n, Z), on device."""
    return posterior(self.model_def, self.params, jax.device_put(x))

  def decode_normalized(self, z, start, steps: int | None = None):
    """Codes z (n, Z) from normalised start postures (n, D) -> (n, steps, D), on device."""
    return decode(self.model_def, self.params, jax.device_put(z), jax.device_put(start),
                  steps or self.steps)

  def sample_codes(self, n: int, key, prior: str = 'flow', *, observation=None, label=None,
                   guidance: float = 1.0):
    """n behavior codes (n, Z): T^-1(u) with u ~ N(0, I) ('flow'), z ~ N(0, I) ('gaussian'),
    or DDIM samples of the diffusion prior given `observation` ('diffusion').

    observation (diffusion only): poses in metres, (F, 17, 3) -> codes (n, Z), or
    (B, F, 17, 3) -> (B, n, Z); F = `observed_frames` at 50 Hz, ending with the pose the codes
    are to be decoded from. label: None (unguided), a class id, or (B,) ids; guidance: the
    classifier-free guidance scale.
    """
    if prior not in PRIORS:
      raise ValueError(f'prior={prior!r} must be one of {PRIORS}.')
    if prior == 'diffusion':
      if observation is None:
        raise ValueError("prior='diffusion' needs observation=: the observed poses in metres.")
      obs = self._observation(observation)
      codes = self.diffusion_codes_normalized(obs, n, key, label, guidance)
      return codes[0] if np.ndim(observation) == 3 else codes
    if observation is not None or label is not None:
      raise ValueError(f"observation= and label= condition prior='diffusion' only, not "
                       f'{prior!r}.')
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

  def predict(self, observation, k: int, key, prior: str = 'diffusion', label=None,
               guidance: float = 1.0, steps: int | None = None) -> np.ndarray:
    """k futures of one observation (F, 17, 3) metres, decoded from its last pose.

    Returns (k, steps + 1, 17, 3) metres at the model's frame rate, starting with the last
    observed pose. The Gaussian and flow priors ignore all but that pose.
    """
    obs = np.asarray(observation, np.float32)
    if obs.ndim != 3:
      raise ValueError(f'observation: expected (frames, 17, 3) poses in metres, got {obs.shape}.')
    if prior == 'diffusion':
      z = self.sample_codes(k, key, prior, observation=obs, label=label, guidance=guidance)
    else:
      z = self.sample_codes(k, key, prior)
    return self.decode(z, np.repeat(obs[-1:], k, axis=0), steps)

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
