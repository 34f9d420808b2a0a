"""Suite 4: stochastic human motion prediction, the DLow / BeLFusion protocol.

Windows (`bds_jax.data.hmp`): test sequences, 25 observed + 100 predicted frames at 50 Hz,
stride 25; metrics on root-relative 16-joint 48-D poses in metres (`metrics.hmp`): APD, ADE,
FDE, MMADE, MMFDE (multimodal ground truth, radius `hmp.threshold`), APDE (against the mmAPD of
those sets), CMD, and FID when a motion-classifier checkpoint is given.

How a behavior model predicts here: for each window, K codes are drawn from the prior
(N(0, I)) or the flow, which see nothing of the observation, or, when the run has a diffusion
prior, from p(code | the 25 observed frames) (`prior='diffusion'`, unguided), and decoded
from the last observed pose (absolute world coordinates, the model's input space) at the
model's frame rate (50 / frame_lag Hz) for ceil(100 / frame_lag) steps. The predicted frames,
with the observed pose at offset 0, are linearly interpolated to the 100 frames at 50 Hz,
then made root-relative. The Gaussian and flow rows use no observed frame but the last (the
paper's method conditions on a start posture only); the diffusion row is BeLFusion's recipe
on this behavior model. The future itself is never encoded.

CMD needs a per-class reference motion: BeLFusion's built-in values on Human3.6M; on other
datasets the mean per-frame, per-joint displacement of each class's true futures in these test
windows (reported as such).
"""

import math

import jax
import numpy as np

from bds_jax import skeleton
from bds_jax.data import hmp as hmp_data
from bds_jax.evaluation.context import Context
from bds_jax.metrics import fid
from bds_jax.metrics import hmp

PREDICTION_RULE = ('K codes from the prior, flow or diffusion prior of each row, decoded from the '
                   'last observed pose at {hz:g} Hz and linearly resampled to 50 Hz; only the '
                   'diffusion prior sees the observed frames (all of them)')


def resample(start, predicted, frame_lag: int, frames: int):
  """Model frames at raw offsets lag, 2 lag, ... (after `start` at 0) -> raw offsets 1..frames.

  start: (..., J, 3); predicted: (..., S, J, 3) -> (..., frames, J, 3), linear interpolation.
  """
  start = np.broadcast_to(start, (*predicted.shape[:-3], *start.shape[-2:]))
  track = np.concatenate([start[..., None, :, :], predicted], axis=-3)  # offsets 0, lag, ...
  offsets = np.arange(1, frames + 1)
  left = np.minimum(offsets // frame_lag, track.shape[-3] - 1)
  right = np.minimum(left + 1, track.shape[-3] - 1)
  frac = ((offsets - left * frame_lag) / frame_lag)[:, None, None]
  return (1 - frac) * track[..., left, :, :] + frac * track[..., right, :, :]


def class_reference_motion(windows: hmp_data.HMPWindows) -> np.ndarray:
  """Per class: mean per-frame, per-joint displacement of the true futures (m/frame)."""
  fut = windows.future.reshape(*windows.future.shape[:2], -1, 3)
  motion = np.linalg.norm(np.diff(fut, axis=1), axis=-1).mean(axis=(1, 2))  # (N,)
  ref = np.full(len(windows.label_names), np.nan)
  for c in np.unique(windows.label):
    ref[c] = motion[windows.label == c].mean()
  return ref


def run(ctx: Context, *, seed: int, num_samples: int, observed: int, predicted: int,
        stride: int, threshold: float, max_windows: int, classifier_checkpoint: str):
  """Yields the protocol's settings, then per prior the metrics (see the module doc)."""
  windows = hmp_data.protocol_windows(ctx.test_seqs, observed, predicted, stride)
  if max_windows and len(windows) > max_windows:
    keep = np.unique(np.linspace(0, len(windows) - 1, max_windows).round().astype(int))
    windows = windows.subset(keep)
  n, k = len(windows), int(num_samples)
  mmgt = hmp.multimodal_ground_truth(windows.last_observed, windows.future, threshold)
  mm_apd = hmp.multimodal_apd(mmgt)
  if ctx.config.data.name == 'human36m':
    reference, reference_name = hmp.h36m_cmd_reference(windows.label_names), 'BeLFusion H36M'
  else:
    reference, reference_name = class_reference_motion(windows), 'test-split true futures'
  lag = ctx.frame_lag
  steps = math.ceil(predicted / lag)
  starts = ctx.normalizer.normalize(windows.last_observed_abs)  # (N, D)
  extractor = (fid.feature_extractor(fid.load_motion_classifier(classifier_checkpoint))
               if classifier_checkpoint else None)
  real_features = (fid.extract_features(extractor, windows.future)
                   if extractor is not None else None)

  yield 'num_windows', int(n)
  yield 'num_samples', k
  yield 'threshold', float(threshold)
  yield 'mean_multimodal_set_size', float(np.mean(mmgt.sizes))
  yield 'cmd_reference', reference_name
  yield 'prediction', PREDICTION_RULE.format(hz=50.0 / ctx.frame_lag)
  chunk = max(1, 4 * ctx.batch_size // k)
  key = jax.random.key(seed + 5)
  priors = ctx.priors + (('diffusion',) if ctx.sampler.has_diffusion else ())
  if ctx.sampler.has_diffusion and ctx.sampler.observed_frames != observed:
    raise ValueError(f'hmp.observed={observed}, but the diffusion prior was trained on '
                     f'{ctx.sampler.observed_frames} observed frames.')
  for p, prior in enumerate(priors):
    per_window, gen_features = [], []
    for i in range(0, n, chunk):
      ids = np.arange(i, min(n, i + chunk))
      sub = jax.random.fold_in(jax.random.fold_in(key, p), i)
      if prior == 'diffusion':
        obs = ctx.normalizer.normalize(windows.observed_abs[ids])
        codes = np.asarray(jax.device_get(ctx.sampler.diffusion_codes_normalized(
            obs, k, sub))).reshape(len(ids) * k, -1)
      else:
        codes = ctx.prior_codes(len(ids) * k, sub, prior)
      pred = ctx.decode(codes, np.repeat(starts[ids], k, axis=0), steps)
      pred = ctx.normalizer.denormalize(pred).reshape(len(ids), k, steps, skeleton.NUM_JOINTS, 3)
      full = resample(windows.last_observed_abs[ids][:, None], pred, lag, predicted)
      rel = hmp_data.to_root_relative(full)  # (b, K, predicted, 48)
      per_window.append(hmp.window_metrics(rel, windows.future[ids], window_ids=ids, mmgt=mmgt))
      if extractor is not None:
        gen_features.append(fid.extract_features(extractor, rel.reshape(-1, *rel.shape[2:])))
    per_window = {key_: np.concatenate([w[key_] for w in per_window]) for key_ in per_window[0]}
    scores = hmp.summarize(per_window, windows.label, reference,
                           mm_apd if np.any(mm_apd) else None)
    if extractor is not None:
      scores['FID'] = fid.fid_from_features(real_features, np.concatenate(gen_features))
    yield prior, scores
  oracle = oracle_code(ctx, windows, observed, predicted)
  if oracle is not None:
    yield 'oracle_code', oracle


def oracle_code(ctx: Context, windows: hmp_data.HMPWindows, observed: int,
                predicted: int) -> dict | None:
  """A diagnostic, not a prediction: ADE and FDE (K = 1) of the code of the true future itself.

  The posterior mean of the behavior window that starts at the last observed pose (what the
  priors' codes stand for; it encodes the future) is decoded and resampled as the priors'
  codes are. This is the behavior model's floor for one code; best-of-K can go below it. None
  when that window does not fit in the predicted frames.
  """
  lag, t = ctx.frame_lag, ctx.seq_len
  if (t - 1) * lag > predicted:
    return None
  frames = np.stack([np.asarray(ctx.test_seqs.poses[q])[s + observed - 1:
                                                         s + observed - 1 + lag * t:lag]
                     for q, s in zip(windows.sequence, windows.start)])
  x = ctx.normalizer.normalize(frames)
  mu, _ = ctx.posterior(x)
  steps = math.ceil(predicted / lag)
  pred = ctx.normalizer.denormalize(ctx.decode(mu, x[:, 0], steps))
  full = resample(windows.last_observed_abs[:, None], pred[:, None], lag, predicted)
  m = hmp.window_metrics(hmp_data.to_root_relative(full), windows.future)
  return {'ADE': float(np.mean(m['ade'])), 'FDE': float(np.mean(m['fde']))}
