"""Behavior model: LSTM conditional VAE q(z | x), p(x | z, x_t) (reference spec §2.1).

Encoder: a one-layer LSTM over the 50-frame pose sequence; its final hidden state goes through
two weight-normalised linear heads giving mu and log-sigma; latent size = LSTM width.
Decoder: an LSTM cell whose initial state is h0 = c0 = z, started from the posture x_t and run
fully autoregressively; each output is Linear(h) + input (a velocity parameterisation), and is
the next step's input. Shapes: poses (B, T, D) with D = 51 normalised dims.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from bds_jax.models import body_frame as body_frame_lib
from bds_jax.models import layers
from bds_jax.models import lstm
from bds_jax.models import precision

LSTM_IMPLS = ('fused', 'reference')


def _lstm_fns(impl: str):
  if impl == 'fused':
    return lstm.lstm_final_state, lstm.residual_decoder
  if impl == 'reference':
    return lstm.lstm_final_state_reference, lstm.residual_decoder_reference
  raise ValueError(f'model.lstm_impl={impl!r} is not one of {LSTM_IMPLS}.')


class Encoder(nnx.Module):
  """x (B, T, D) -> (mu, logstd), each (B, H)."""

  def __init__(self, pose_dim: int, width: int, rngs: nnx.Rngs, lstm_impl: str = 'fused',
               dtype=None):
    self.lstm = layers.LSTMWeights(pose_dim, width, rngs)
    self.mu = layers.WeightNormLinear(width, width, rngs, dtype)
    self.logstd = layers.WeightNormLinear(width, width, rngs, dtype)
    self.lstm_impl = lstm_impl
    self.width = width
    self.dtype = dtype

  def features(self, x):
    """Final hidden state of the LSTM, (B, H)."""
    run, _ = _lstm_fns(self.lstm_impl)
    zeros = jnp.zeros((x.shape[0], self.width), x.dtype)
    return run(x, self.lstm.w[...], self.lstm.b[...], zeros, zeros, self.dtype)

  def __call__(self, x):
    h = self.features(x)
    return self.mu(h), self.logstd(h)


class Decoder(nnx.Module):
  """(z (B, H), start posture (B, D)) -> (B, steps, D), fully autoregressive."""

  def __init__(self, pose_dim: int, width: int, rngs: nnx.Rngs, lstm_impl: str = 'fused',
               dtype=None):
    self.lstm = layers.LSTMWeights(pose_dim, width, rngs)
    self.out = layers.torch_linear(width, pose_dim, rngs)  # used by the kernels directly
    self.lstm_impl = lstm_impl
    self.dtype = dtype

  def __call__(self, z, start, steps: int):
    _, run = _lstm_fns(self.lstm_impl)
    return run(self.lstm.w[...], self.lstm.b[...], self.out.kernel[...].T, self.out.bias[...],
               start, z, z, steps, self.dtype)


class BehaviorModel(nnx.Module):
  """The cVAE (the cAE baseline uses it with z = mu).

  compute_dtype 'bfloat16' runs every matmul in bf16 with float32 accumulation; parameters,
  recurrent state, outputs and losses stay float32.

  `body_frame` (a `body_frame.BodyFrame`, or None for the paper's world frame) makes the
  networks see poses relative to a reference pose (see body_frame.py); inputs and outputs stay
  world z-scores either way, and the parameters are the same.
  """

  def __init__(self, pose_dim: int, width: int, rngs: nnx.Rngs, lstm_impl: str = 'fused',
               compute_dtype: str = 'float32',
               body_frame: body_frame_lib.BodyFrame | None = None,
               encoder_input: str = 'poses'):
    _lstm_fns(lstm_impl)  # validate early
    if encoder_input not in ENCODER_INPUTS:
      raise ValueError(f'model.encoder_input={encoder_input!r} is not one of {ENCODER_INPUTS}.')
    self.encoder_input = encoder_input
    dtype = precision.resolve(compute_dtype)
    self.encoder = Encoder(pose_dim, width, rngs, lstm_impl, dtype)
    self.decoder = Decoder(pose_dim, width, rngs, lstm_impl, dtype)
    self.pose_dim = pose_dim
    self.width = width
    self.body_frame = body_frame

  def posterior(self, x):
    """x (B, T, D) -> (mu, logstd)."""
    _check_poses(x, self.pose_dim, 'behavior sequence')
    if self.body_frame is not None:
      x = self.body_frame.encode(x, self.body_frame.frame_of(x[:, 0]))
    if self.encoder_input == 'displacement':
      x = x - x[:, :1]
    return self.encoder(x)

  def decode(self, z, start, steps: int):
    """Re-enacts behavior code z from start posture (B, D); returns (B, steps, D)."""
    _check_poses(start[:, None], self.pose_dim, 'start posture')
    if self.body_frame is None:
      return self.decoder(z, start, steps)
    frame = self.body_frame.frame_of(start)
    out = self.decoder(z, self.body_frame.encode(start, frame), steps)
    return self.body_frame.decode(out, frame)

  def __call__(self, x, key=None, start=None):
    """Self-reconstruction (or transfer when `start` is given) of x (B, T, D).

    With `key`, z is a posterior sample; without, z = mu. Returns (x_hat, mu, logstd) where
    x_hat (B, T, D) predicts frames 1..T of the sequence that starts at `start` (default x[:, 0]).
    """
    mu, logstd = self.posterior(x)
    z = mu if key is None else sample_posterior(key, mu, logstd)
    start = x[:, 0] if start is None else start
    return self.decode(z, start, x.shape[1]), mu, logstd


ENCODER_INPUTS = ('poses', 'displacement')


def sample_posterior(key, mu, logstd):
  return mu + jnp.exp(logstd) * jax.random.normal(key, mu.shape, mu.dtype)


def _check_poses(x, pose_dim, what):
  if x.ndim != 3 or x.shape[-1] != pose_dim:
    raise ValueError(
        f'{what}: expected shape (batch, frames, {pose_dim}) of flattened normalised poses '
        f'(17 joints x 3), got {x.shape}.')
