"""Observation-conditioned latent diffusion over behavior codes (BeLFusion-style; HMP spec §5.3).

Pieces, each a pure function or an nnx module:

* `sqrt_schedule(num_steps)`: BeLFusion's "sqrt1e-4" noise schedule, ᾱ(s) = 1 − √(s + 1e-4)
  discretised on s = i / num_steps with β capped at 0.999 (10 steps: β ≈ 0.309, 0.192, …, 0.999).
* `ObservationAutoencoder`: a GRU over the observed frames whose last hidden state is the
  observation embedding (spec §5.1: hidden 64), and a GRU decoder that reconstructs the frames
  from it, used only to train the embedding; the prior sees the encoder frozen.
* `Denoiser`: an MLP that predicts x₀ from x_t, FiLM-conditioned (per-block scale and shift)
  on a sinusoidal step embedding, the observation embedding and, optionally, a label embedding
  with one extra "null" label for classifier-free guidance. BeLFusion uses a 2-D U-Net over the
  code reshaped to 16 × 8 with the same concatenated conditioning vector; an MLP is the small
  denoiser the issue allows, and has no reason to treat code dimensions as an image.
* `ddim_sample`: DDIM with η = 0 for an x₀-predicting network, x₀ clamped to [−1, 1] at every
  step as BeLFusion does (codes are min-max scaled to that range), returning the last x₀.
* `guided_x0`: classifier-free guidance, x̂₀ = x̂₀(∅) + s · (x̂₀(label) − x̂₀(∅)); s = 1 is the
  plain conditional model, s = 0 unguided.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


def sqrt_schedule(num_steps: int) -> np.ndarray:
  """β_1..β_T of the "sqrt1e-4" schedule (float64 numpy, shape (num_steps,))."""
  if num_steps < 1:
    raise ValueError(f'diffusion.num_steps={num_steps!r} must be >= 1.')
  abar = lambda s: 1.0 - math.sqrt(s + 1e-4)
  return np.array([min(1.0 - abar((i + 1) / num_steps) / abar(i / num_steps), 0.999)
                   for i in range(num_steps)])


def alphas_cumprod(betas) -> np.ndarray:
  return np.cumprod(1.0 - np.asarray(betas, np.float64))


def q_sample(abar, x0, t, noise):
  """x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε for steps t (B,) (0-based), abar (T,)."""
  a = abar[t][:, None]
  return jnp.sqrt(a) * x0 + jnp.sqrt(1.0 - a) * noise


def step_embedding(t, dim: int):
  """Sinusoidal embedding (B, dim) of integer steps t (B,) (guided-diffusion's)."""
  half = dim // 2
  freqs = jnp.exp(-math.log(10000.0) * jnp.arange(half, dtype=jnp.float32) / half)
  args = t.astype(jnp.float32)[:, None] * freqs[None]
  return jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)


class ObservationAutoencoder(nnx.Module):
  """obs (B, F, D) -> embedding (B, E); `reconstruct` decodes it back to (B, F, D).

  The decoder is a GRU fed [embedding, previous frame], seeded with the first observed frame
  and emitting residual offsets frame by frame (spec §5.1, without its tanh MLP towers).
  """

  def __init__(self, pose_dim: int, embed_dim: int, hidden: int, rngs: nnx.Rngs):
    self.encoder = nnx.GRUCell(pose_dim, embed_dim, rngs=rngs)
    self.init_state = nnx.Linear(embed_dim, hidden, rngs=rngs)
    self.decoder = nnx.GRUCell(embed_dim + pose_dim, hidden, rngs=rngs)
    self.out = nnx.Linear(hidden, pose_dim, rngs=rngs)
    self.embed_dim = embed_dim

  def __call__(self, obs):
    def body(h, x):
      return self.encoder(h, x)[0], None

    h0 = jnp.zeros((obs.shape[0], self.embed_dim), obs.dtype)
    # Reading (not writing) module state inside a plain lax.scan is safe, and cheaper to trace.
    h, _ = jax.lax.scan(body, h0, jnp.swapaxes(obs, 0, 1))
    return h

  def reconstruct(self, obs):
    emb = self(obs)
    h = jnp.tanh(self.init_state(emb))

    def body(carry, _):
      h, prev = carry
      h, _ = self.decoder(h, jnp.concatenate([emb, prev], axis=-1))
      nxt = prev + self.out(h)
      return (h, nxt), nxt

    _, frames = jax.lax.scan(body, (h, obs[:, 0]), None, length=obs.shape[1] - 1)
    return jnp.concatenate([obs[:, :1], jnp.swapaxes(frames, 0, 1)], axis=1)


class FiLMBlock(nnx.Module):
  """h + Linear(SiLU(LayerNorm(h) · (1 + scale) + shift)), scale and shift from the condition."""

  def __init__(self, width: int, cond_dim: int, rngs: nnx.Rngs):
    self.norm = nnx.LayerNorm(width, use_scale=False, use_bias=False, rngs=rngs)
    self.film = nnx.Linear(cond_dim, 2 * width, rngs=rngs,
                           kernel_init=nnx.initializers.zeros_init())
    self.dense = nnx.Linear(width, width, rngs=rngs)

  def __call__(self, h, cond):
    scale, shift = jnp.split(self.film(cond), 2, axis=-1)
    return h + self.dense(jax.nn.silu(self.norm(h) * (1.0 + scale) + shift))


class Denoiser(nnx.Module):
  """x₀-prediction network f(x_t, t, observation embedding, label) -> (B, Z).

  num_labels > 0 adds a label embedding table of num_labels + 1 rows; row num_labels is the
  null label (unconditional), which training substitutes with probability label_dropout.
  """

  def __init__(self, code_dim: int, obs_dim: int, width: int, num_blocks: int,
               num_labels: int, rngs: nnx.Rngs, cond_dim: int = 128):
    self.step_dim = cond_dim
    self.step_mlp = nnx.Sequential(nnx.Linear(cond_dim, cond_dim, rngs=rngs), jax.nn.silu,
                                   nnx.Linear(cond_dim, cond_dim, rngs=rngs))
    self.obs_proj = nnx.Linear(obs_dim, cond_dim, rngs=rngs)
    self.num_labels = num_labels
    self.labels = (nnx.Embed(num_labels + 1, cond_dim, rngs=rngs) if num_labels else None)
    self.inp = nnx.Linear(code_dim, width, rngs=rngs)
    self.blocks = nnx.List([FiLMBlock(width, 3 * cond_dim, rngs) for _ in range(num_blocks)])
    self.out_norm = nnx.LayerNorm(width, rngs=rngs)
    self.out = nnx.Linear(width, code_dim, rngs=rngs)

  def __call__(self, x_t, t, obs_emb, label=None):
    """x_t (B, Z) or (B, K, Z): K chains per condition; t, label (B,), obs_emb (B, E).

    The condition (and with it every FiLM scale and shift) is computed once per row of t and
    broadcast over the K chains that share it, which is most of the work saved when sampling
    K futures of one observation."""
    b = t.shape[0]
    parts = [self.step_mlp(step_embedding(t, self.step_dim)), self.obs_proj(obs_emb)]
    if self.labels is not None:
      label = jnp.full((b,), self.num_labels, jnp.int32) if label is None else label
      parts.append(self.labels(label))
    else:
      parts.append(jnp.zeros_like(parts[0]))
    cond = jax.nn.silu(jnp.concatenate(parts, axis=-1))
    if x_t.ndim == 3:
      cond = cond[:, None]
    h = self.inp(x_t)
    for block in self.blocks:
      h = block(h, cond)
    return self.out(jax.nn.silu(self.out_norm(h)))


def guided_x0(denoiser: Denoiser, x_t, t, obs_emb, label, scale):
  """Classifier-free-guided x₀ prediction; label None (or a model without labels): unguided."""
  if label is None or denoiser.labels is None:
    return denoiser(x_t, t, obs_emb)
  cond = denoiser(x_t, t, obs_emb, label)
  uncond = denoiser(x_t, t, obs_emb)
  return uncond + scale * (cond - uncond)


def ddim_sample(x0_fn, abar, x_T, clip: float | None = 1.0):
  """DDIM, η = 0, for an x₀-predicting model: x0_fn(x_t, t (B,)) -> x̂₀; returns the last x̂₀.

  x_T is (B, ...), e.g. (B, K, Z) for K chains per condition; t has one entry per row.

  x_{t−1} = √ᾱ_{t−1} x̂₀ + √(1 − ᾱ_{t−1}) ε̂ with ε̂ = (x_t − √ᾱ_t x̂₀) / √(1 − ᾱ_t); the chain
  runs t = T−1, …, 0 (0-based), and at t = 0 the prediction itself is the sample.
  """
  abar = jnp.asarray(abar, jnp.float32)
  num = abar.shape[0]
  batch = x_T.shape[0]

  def body(i, carry):
    x, _ = carry
    t = num - 1 - i
    x0 = x0_fn(x, jnp.full((batch,), t, jnp.int32))
    if clip is not None:
      x0 = jnp.clip(x0, -clip, clip)
    a = abar[t]
    a_prev = jnp.where(t > 0, abar[jnp.maximum(t - 1, 0)], 1.0)
    eps = (x - jnp.sqrt(a) * x0) / jnp.sqrt(1.0 - a)
    return jnp.sqrt(a_prev) * x0 + jnp.sqrt(1.0 - a_prev) * eps, x0

  _, x0 = jax.lax.fori_loop(0, num, body, (x_T, jnp.zeros_like(x_T)))
  return x0


def best_of_k_loss(pred, target, kind: str):
  """min over k of the per-sample error; pred (B, K, ...), target (B, ...) -> (B,) minima.

  kind 'l1': mean absolute error (the latent term); 'l2': the root-mean-square difference (the
  motion term). BeLFusion's ‖·‖₁ and ‖·‖₂ are per-element means and a norm of the whole
  flattened motion; per-element scales keep one weight meaningful for any code size and length.
  """
  diff = (pred - target[:, None]).reshape(pred.shape[0], pred.shape[1], -1)
  if kind == 'l1':
    err = jnp.mean(jnp.abs(diff), axis=-1)
  elif kind == 'l2':
    err = jnp.sqrt(jnp.mean(diff * diff, axis=-1) + 1e-12)
  else:
    raise ValueError(f'kind={kind!r} must be l1 or l2.')
  return jnp.min(err, axis=1)


class CodeStats(nnx.Variable):
  """Per-dimension min and max of the training codes: fixed buffers, not trained."""


class DiffusionPrior(nnx.Module):
  """p(behavior code | observation[, label]): the observation encoder, the denoiser, the code
  scaling and the schedule, as one module (split with `nnx.Param, CodeStats`).

  Observations are (B, observed, D) normalised world poses at 50 Hz. With a behavior model in
  the body frame (`body_frame`), the encoder sees them in the frame of the last observed pose,
  as the behavior encoder sees its window in the frame of its first pose (the same pose): the
  prior is then invariant to where the person stands and faces, like the codes it predicts.
  Codes are min-max scaled to [−1, 1] with the training codes' statistics (BeLFusion).
  """

  def __init__(self, code_dim: int, pose_dim: int, observed: int, *, embed_dim: int,
               decoder_hidden: int, width: int, num_blocks: int, num_labels: int,
               num_steps: int, rngs: nnx.Rngs, body_frame=None):
    self.observation = ObservationAutoencoder(pose_dim, embed_dim, decoder_hidden, rngs)
    self.denoiser = Denoiser(code_dim, embed_dim, width, num_blocks, num_labels, rngs)
    self.code_lo = CodeStats(-jnp.ones((code_dim,)))
    self.code_hi = CodeStats(jnp.ones((code_dim,)))
    self.abar = tuple(alphas_cumprod(sqrt_schedule(num_steps)).tolist())
    self.body_frame = body_frame
    self.code_dim, self.pose_dim, self.observed = code_dim, pose_dim, observed
    self.num_labels = num_labels

  def observation_input(self, obs):
    if self.body_frame is None:
      return obs
    return self.body_frame.encode(obs, self.body_frame.frame_of(obs[:, -1]))

  def embed(self, obs):
    return self.observation(self.observation_input(obs))

  def scale(self, z):
    lo, hi = self.code_lo[...], self.code_hi[...]
    return 2.0 * (z - lo) / jnp.maximum(hi - lo, 1e-6) - 1.0

  def unscale(self, x):
    lo, hi = self.code_lo[...], self.code_hi[...]
    return (x + 1.0) * 0.5 * jnp.maximum(hi - lo, 1e-6) + lo

  def sample(self, key, obs, k: int, label=None, guidance: float = 1.0):
    """k codes per observation: (B, observed, D) -> (B, k, Z), one DDIM chain each.

    label (B,) int asks for that class with guidance scale `guidance`; None samples unguided
    (the null label, or a model without labels).
    """
    emb = self.embed(obs)
    lab = None if label is None else label.astype(jnp.int32)
    x_T = jax.random.normal(key, (obs.shape[0], k, self.code_dim))
    x0 = ddim_sample(lambda x, t: guided_x0(self.denoiser, x, t, emb, lab, guidance),
                     self.abar, x_T)
    return self.unscale(x0)
