"""Suite 4: stochastic human motion prediction, the DLow / BeLFusion protocol.

Windows (`bds_jax.data.hmp`): test sequences, 25 observed + 100 predicted frames at 50 Hz,
stride 25; metrics on root-relative 16-joint 48-D poses in metres (`metrics.hmp`): APD, ADE,
FDE, MMADE, MMFDE (multimodal ground truth, radius `hmp.threshold`), APDE (against the mmAPD of
those sets), CMD, and FID when a motion-classifier checkpoint is given.

How a behavior model predicts here: for each window, K codes are drawn from the prior
(N(0, I)) or the flow, which see nothing of the observation, or, when the run has a diffusion
prior (<workdir>/diffusion), from p(code | the 25 observed frames) (`prior='diffusion'`,
unguided; `diffusion_prior` says whether that prior is BeLFusion's observation-only one or a
class-conditioned one sampled with its null label), and decoded
from the last observed pose (absolute world coordinates, the model's input space) at the
model's frame rate (50 / frame_lag Hz) for ceil(100 / frame_lag) steps. The predicted frames,
with the observed pose at offset 0, are linearly interpolated to the 100 frames at 50 Hz,
then made root-relative. The Gaussian and flow rows use no observed frame but the last (the
paper's method conditions on a start posture only); the diffusion row is BeLFusion's recipe
on this behavior model. The future itself is never encoded.

CMD needs a per-class reference motion: BeLFusion's built-in values on Human3.6M; on other
datasets the mean per-frame, per-joint displacement of each class's true futures in these test
windows (reported as such).

`protocol_differences` lists, in a few words each, what still separates these numbers from the
published ones' protocol, and `recipe_differences` how the diffusion row's model differs from
BeLFusion's; the report prints both under the table.
"""

import math

import jax
import numpy as np

from bds_jax import skeleton
from bds_jax.data import datasets
from bds_jax.data import hmp as hmp_data
from bds_jax.evaluation import report
from bds_jax.evaluation.report import fmt
from bds_jax.evaluation.context import Context
from bds_jax.metrics import fid
from bds_jax.metrics import hmp

PREDICTION_RULE = ('K codes from the prior, flow or diffusion prior of each row, decoded from the '
                   'last observed pose at {hz:g} Hz and linearly resampled to 50 Hz; only the '
                   'diffusion prior sees the observed frames (all of them)')


def class_reference_motion(windows: hmp_data.HMPWindows) -> np.ndarray:
  """Per class: mean per-frame, per-joint displacement of the true futures (m/frame)."""
  fut = windows.future.reshape(*windows.future.shape[:2], -1, 3)
  motion = np.linalg.norm(np.diff(fut, axis=1), axis=-1).mean(axis=(1, 2))  # (N,)
  ref = np.full(len(windows.label_names), np.nan)
  for c in np.unique(windows.label):
    ref[c] = motion[windows.label == c].mean()
  return ref


def diffusion_prior_kind(num_labels: int) -> str:
  """What the diffusion row's prior is conditioned on, for the report."""
  if num_labels:
    return (f'action-conditioned ({num_labels} classes), sampled with the null label: not '
            'BeLFusion\'s setting (the null label saw only label_dropout of the updates)')
  return 'observation-only (BeLFusion\'s setting)'


def protocol_differences(ctx: Context, *, windows: int, total: int, k: int, observed: int,
                         predicted: int, stride: int, threshold: float, fid_given: bool):
  """What separates this evaluation from the published numbers' protocol (stochastic-HMP spec
  §1.3-§3.8), each in a few words."""
  out = []
  h36m = datasets.get(ctx.config.data.name).hmp_protocol
  if not h36m:
    out.append(f'data: {ctx.config.data.name}, not Human3.6M')
  if windows < total:
    out.append(f'{windows} of the {total} protocol windows (hmp.max_windows)')
  if (k, observed, predicted, stride) != (50, hmp_data.H36M_OBSERVED, hmp_data.H36M_PREDICTED,
                                          hmp_data.H36M_STRIDE):
    out.append(f'K = {k}, {observed} → {predicted} frames, stride {stride} '
               '(protocol: K = 50, 25 → 100, stride 25)')
  if threshold != 0.5:
    out.append(f'multimodal radius {threshold:g} (Human3.6M: 0.5)')
  if ctx.frame_lag > 1:
    out.append(f'predicted at {50.0 / ctx.frame_lag:g} Hz, resampled linearly to 50 Hz')
  out.append('FID classifier: zero initial GRU state (BeLFusion: N(0, 1) on every call)'
             if fid_given else 'no FID (no hmp.classifier_checkpoint)')
  if not h36m:
    out.append('CMD reference: these true futures (BeLFusion\'s constants are Human3.6M\'s)')
  out.append('mmAPD for APDE computed from these windows, not read from mmapd_GT.csv')
  return out


def recipe_differences(ctx: Context) -> list[str]:
  """How the diffusion row's model differs from BeLFusion's (docs/fidelity.md)."""
  frame = ctx.config.model.get('frame', 'world')
  out = [f'behavior space: this paper\'s cVAE, {frame} frame, {50.0 / ctx.frame_lag:g} Hz '
         '(BeLFusion\'s: root-relative, 50 Hz)',
         'no mirror or rotation augmentation (BeLFusion: both)',
         'codes decoded from the last observed pose (BeLFusion: 3 context frames)',
         'denoiser: FiLM MLP (BeLFusion: 2-D U-Net over 16 × 8)',
         'observation embedding not min-max normalised']
  if frame == 'body':
    out.append('observation seen in the body frame of the last pose (BeLFusion: root-relative)')
  diffusion = getattr(ctx, 'diffusion', None)  # the loaded run (evaluate.py only)
  if diffusion is not None:
    samples = diffusion.config.model.get('code_stats_samples', 0)
    if samples:
      out.append(f'code scaling from {samples} random training codes (BeLFusion: all of them)')
    preset = diffusion.config.get('preset', '')
    if preset in ('demo', 'smoke'):
      out.append(f'prior trained with the shortened :{preset} preset')
  return out


def run(ctx: Context, *, seed: int, num_samples: int, observed: int, predicted: int,
        stride: int, threshold: float, max_windows: int, classifier_checkpoint: str):
  """Yields the protocol's settings, then per prior the metrics (see the module doc)."""
  windows = hmp_data.protocol_windows(ctx.test_seqs, observed, predicted, stride)
  total = len(windows)
  if max_windows and len(windows) > max_windows:
    keep = np.unique(np.linspace(0, len(windows) - 1, max_windows).round().astype(int))
    windows = windows.subset(keep)
  n, k = len(windows), int(num_samples)
  mmgt = hmp.multimodal_ground_truth(windows.last_observed, windows.future, threshold)
  mm_apd = hmp.multimodal_apd(mmgt)
  if datasets.get(ctx.config.data.name).hmp_protocol:
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
  yield 'protocol_differences', protocol_differences(
      ctx, windows=n, total=total, k=k, observed=observed, predicted=predicted, stride=stride,
      threshold=threshold, fid_given=extractor is not None)
  if ctx.sampler.has_diffusion:
    yield 'diffusion_prior', diffusion_prior_kind(ctx.sampler.num_labels)
    yield 'recipe_differences', recipe_differences(ctx)
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
      full = hmp_data.resample(windows.last_observed_abs[ids][:, None], pred, lag, predicted)
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
  full = hmp_data.resample(windows.last_observed_abs[:, None], pred[:, None], lag, predicted)
  m = hmp.window_metrics(hmp_data.to_root_relative(full), windows.future)
  return {'ADE': float(np.mean(m['ade'])), 'FDE': float(np.mean(m['fde']))}


def _prior_label(prior: str, r: dict) -> str:
  if prior != 'diffusion':
    return prior
  return f'diffusion: {r.get("diffusion_prior", "conditioning not recorded")}'


def table(results: dict, dataset: str) -> str:
  cols = ('APD', 'ADE', 'FDE', 'MMADE', 'MMFDE', 'APDE', 'CMD', 'FID')
  lines = ['## Stochastic human motion prediction (DLow/BeLFusion protocol)'
           + report.dataset_note(dataset),
           '25 observed / 100 predicted frames at 50 Hz, root-relative 16 joints, metres.', '',
           '| model | prior | ' + ' | '.join(cols) + ' |', '|' + '---|' * (len(cols) + 2)]
  for name, r in results.items():
    for prior in report.HMP_PRIORS:
      if prior in r:
        lines.append(f'| {name} | {_prior_label(prior, r)} | ' +
                     ' | '.join(fmt(r[prior].get(c), 3) for c in cols) + ' |')
    if 'oracle_code' in r:
      lines.append(f'| {name} | oracle: the true future\'s own code, K = 1 | ' +
                   ' | '.join(fmt(r['oracle_code'].get(c), 3) for c in cols) + ' |')
  for method, row in report.PUBLISHED_HMP.items():
    caveats = report.PUBLISHED_HMP_CAVEATS
    caveat = f'; {caveats[method]}' if method in caveats else ''
    lines.append(f'| {method} (published, Human3.6M{caveat}) | | ' +
                 ' | '.join(fmt(row.get(c), 3) for c in cols) + ' |')
  first = next(iter(results.values()))
  lines += ['', f'{first["num_windows"]} windows, K = {first["num_samples"]}, multimodal radius '
                f'{first["threshold"]}; CMD reference: {first["cmd_reference"]}.',
            f'Prediction: {first["prediction"]}.',
            'Published rows: as listed in benchmark summaries and other papers\' tables, not read '
            'from the papers; "second-hand" ones only from such tables.']
  for name, r in results.items():
    who = f' ({name})' if len(results) > 1 else ''
    if r.get('protocol_differences'):
      lines += ['', f'Differences from the published protocol{who}:']
      lines += [f'- {d}' for d in r['protocol_differences']]
    if r.get('recipe_differences'):
      lines += ['', f'The diffusion row\'s model beside BeLFusion\'s{who}:']
      lines += [f'- {d}' for d in r['recipe_differences']]
  return '\n'.join(lines) + '\n'
