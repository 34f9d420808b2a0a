"""Behavior-transfer metrics of the paper's Table 1: TDE(T), d_β, and MPJPE for GT transfer.

Notation (reference spec §5.1–5.2). A source window has seq_len + 1 frames (51 at the paper's
settings): frames 0..seq_len-1 are the encoder input and the model predicts frames 1..seq_len.
A re-enactment X_cross = Dec(μ(x_s), start = first frame of another window) is therefore
(N, seq_len, D), where index k is the prediction of frame k + 1.

TDE(T) ("transfer displacement error").
  Upstream: TDE(T) = mean over samples of ||X_cross[:, k] − x_s[:, k]||_2, the Euclidean norm
  over the 51 *z-scored* dims (not squared, not metres), with T ∈ {1, 10, 20, 30, 40, 50}
  mapped to prediction indices k ∈ {0, 10, 20, 30, 40, 49} (`TDE_INDICES`). Since X_cross[:, k]
  predicts frame k + 1, upstream compares it with the source frame one step earlier.
  `tde_upstream` reproduces exactly that.
  Ours (`tde`): the same prediction index k is compared with the source frame it predicts,
  x_s[:, k + 1], i.e. the comparison is time-aligned. We keep upstream's T -> k mapping (so
  each column is the same prediction as upstream's; note it is not uniform: T=1 is the 1st
  prediction, T=10 the 11th, T=50 the 50th). A model that copies the source's postures scores
  0 here, but roughly one frame of motion under upstream's definition.
  `space='normalized'` (default, paper-comparable) takes z-scored (..., 51) inputs;
  `space='metres'` measures the same norm over the 51 dims in metres, from metre inputs
  ((..., 51) or (..., 17, 3)) or from z-scores plus the `normalizer` that made them.

d_β: ||μ(x_s) − μ(X̃)||_2 in the latent space, where X̃ is the transfer decoded with a posterior
  sample and re-encoded. Upstream recorded the mean and std per batch of 64 and reported the
  mean of each over batches (`d_beta(..., batch_size=64)` reproduces that, assuming torch's
  default unbiased std); by default we report mean and (population) std over all samples.

MPJPE: mean over joints of the per-joint Euclidean error, in millimetres, for (…, T, 17, 3)
  metre arrays (the error measure for transfers with a known ground truth, e.g. synthetic data).
"""

import numpy as np

from bds_jax import skeleton

TDE_T_VALUES = (1, 10, 20, 30, 40, 50)
# Upstream's prediction index for each T (reference spec §5.2).
TDE_INDICES = {1: 0, 10: 10, 20: 20, 30: 30, 40: 40, 50: 49}


def _to_space(x, space: str, normalizer):
  """Returns x as (..., L, D) float64 in the requested space."""
  x = np.asarray(x, np.float64)
  if space == 'normalized':
    if normalizer is not None:
      raise ValueError("space='normalized' takes z-scored inputs; do not pass a normalizer.")
    return x
  if space == 'metres':
    if normalizer is not None:
      if x.shape[-1] != skeleton.POSE_DIM:
        raise ValueError(f'With a normalizer, inputs must be z-scored (..., {skeleton.POSE_DIM}) '
                         f'arrays, got shape {x.shape}.')
      x = np.asarray(normalizer.denormalize(x), np.float64)
    if x.shape[-2:] == (skeleton.NUM_JOINTS, 3):
      x = x.reshape(*x.shape[:-2], skeleton.POSE_DIM)
    return x
  raise ValueError(f"space={space!r} must be 'normalized' or 'metres'.")


def _frame_indices(frames, length: int) -> dict:
  out = {}
  for t in frames:
    if t not in TDE_INDICES:
      raise ValueError(f'TDE is defined for T in {TDE_T_VALUES}, got T={t}.')
    k = TDE_INDICES[t]
    if k >= length:
      raise ValueError(f'T={t} needs prediction index {k}, but the re-enactment has only '
                       f'{length} frames.')
    out[t] = k
  return out


def _tde(reenactment, source, frames, space, normalizer, offset: int) -> dict:
  pred = _to_space(reenactment, space, normalizer)
  src = _to_space(source, space, normalizer)
  if pred.ndim != 3 or src.ndim != 3 or pred.shape[0] != src.shape[0] or (
      pred.shape[-1] != src.shape[-1]):
    raise ValueError(f'Expected re-enactment (N, L, D) and source window (N, L + 1, D), got '
                     f'{np.shape(reenactment)} and {np.shape(source)}.')
  length = pred.shape[1]
  if src.shape[1] < length + offset:
    raise ValueError(f'The source window needs at least {length + offset} frames for a '
                     f're-enactment of {length} predictions, got {src.shape[1]}.')
  idx = _frame_indices(frames, length)
  return {t: float(np.mean(np.linalg.norm(pred[:, k] - src[:, k + offset], axis=-1)))
          for t, k in idx.items()}


def tde(reenactment, source, frames=TDE_T_VALUES, space: str = 'normalized',
        normalizer=None) -> dict:
  """Time-aligned TDE(T): prediction k (of frame k + 1) vs source frame k + 1.

  Args:
    reenactment: (N, L, D) predictions; index k predicts frame k + 1 of the source window.
    source: (N, L + 1, D) the whole source window, frames 0..L.
    frames: values of T, each in `TDE_T_VALUES`.
    space: 'normalized' (z-scored inputs, norm over the 51 dims) or 'metres' (see module doc).
    normalizer: with space='metres', the `Normalizer` of z-scored inputs; None for metre inputs.

  Returns:
    {T: mean over samples of the L2 norm of the pose difference}.
  """
  return _tde(reenactment, source, frames, space, normalizer, offset=1)


def tde_upstream(reenactment, source, frames=TDE_T_VALUES, space: str = 'normalized',
                 normalizer=None) -> dict:
  """Upstream-comparable TDE(T) with its one-frame offset: prediction k vs source frame k.

  Same arguments as `tde`; the source needs only frames 0..L-1 (its encoder input).
  """
  return _tde(reenactment, source, frames, space, normalizer, offset=0)


def d_beta(mu_source, mu_reenacted, batch_size: int | None = None) -> dict:
  """Latent distance d_β = ||mu_source − mu_reenacted||_2 per sample; its mean and std.

  Args:
    mu_source: (N, Z) posterior means of the source windows.
    mu_reenacted: (N, Z) posterior means of their re-encoded transfers.
    batch_size: None for mean and population std over all N samples; an int (upstream: 64)
      for upstream's statistic: mean and unbiased std within each full consecutive batch,
      each averaged over batches (a trailing partial batch is dropped, as upstream's loader
      used drop_last).

  Returns:
    {'mean': float, 'std': float}.
  """
  a = np.asarray(mu_source, np.float64)
  b = np.asarray(mu_reenacted, np.float64)
  if a.shape != b.shape or a.ndim != 2:
    raise ValueError(f'Expected two (N, Z) arrays of equal shape, got {a.shape} and {b.shape}.')
  dist = np.linalg.norm(a - b, axis=-1)
  if batch_size is None:
    return {'mean': float(dist.mean()), 'std': float(dist.std())}
  if batch_size < 2:
    raise ValueError(f'batch_size must be >= 2 for a per-batch std, got {batch_size}.')
  num = len(dist) // batch_size
  if num == 0:
    raise ValueError(f'd_beta needs at least one full batch of {batch_size}, got {len(dist)}.')
  per = dist[:num * batch_size].reshape(num, batch_size)
  return {'mean': float(per.mean(axis=1).mean()), 'std': float(per.std(axis=1, ddof=1).mean())}


def mpjpe_mm(a, b) -> dict:
  """Mean per-joint position error in millimetres between (..., T, 17, 3) metre arrays.

  Returns:
    {'per_frame': (T,) error averaged over joints and all leading dims, 'mean': float, the
    average over frames too}.
  """
  a = np.asarray(a, np.float64)
  b = np.asarray(b, np.float64)
  if a.shape != b.shape or a.ndim < 3 or a.shape[-2:] != (skeleton.NUM_JOINTS, 3):
    raise ValueError(f'Expected two (..., T, {skeleton.NUM_JOINTS}, 3) arrays of equal shape, '
                     f'got {a.shape} and {b.shape}.')
  err = np.linalg.norm(a - b, axis=-1) * 1000.0  # (..., T, 17) in mm
  err = err.reshape(-1, *err.shape[-2:])
  per_frame = err.mean(axis=(0, 2))
  return {'per_frame': per_frame, 'mean': float(per_frame.mean())}
