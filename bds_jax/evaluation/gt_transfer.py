"""Suite 5 (new): behavior transfer scored against ground truth, on the synthetic dataset.

The paper could only measure transfer indirectly (TDE, d_beta, classifiers): on real data the
true re-enactment of behavior b from another start posture does not exist. The procedural
generator can render it.

Protocol: test-subject pairs (source, target) with different start postures.
- The source window is seq_len + 1 lag-spaced frames of the source sequence starting at its
  `behavior_onset` (rounded to a raw frame): the behavior proper, without the source's hold of
  its start posture (0.2-0.6 s) or its transition (e.g. standing up). Only sources whose window
  fits after the onset are drawn.
- The model re-enacts mu(source window) from the target's first frame.
- The truth is `synthetic.render(target subject, target posture, b, source behavior_seed,
  target placement_seed, hold=0)`: the target starts moving at once, so the behavior starts at
  the same model frame as in the source window, unless the target's posture needs a transition
  into b first (standing up to walk, say). Pairs are reported by that category: `direct`
  (no transition; the truth is the source's behavior, aligned) and `transition` (the truth
  spends its first ~0.7-1.3 s on the transition); `all` pools them.

Reported, per category: MPJPE in mm between prediction and truth, per T and averaged over the
window, for the model and three naive references:
- `static`: holding the target start posture;
- `source_offsets`: the source's per-joint displacements since its first frame, added to the
  target start posture;
- `copy_source`: the source window itself, translated so that its root starts at the target's.
And behavior recognition: a sequence classifier trained on train-split windows (behavior
labels) recognises the source's behavior in the re-enactments; its accuracy on the true
renderings and on real test windows is shown for scale.
"""

import numpy as np

from bds_jax import synthetic
from bds_jax.data.pipeline import fixed_windows
from bds_jax.evaluation.context import Context
from bds_jax.evaluation.transfer import t_values
from bds_jax.metrics import probes
from bds_jax.metrics import transfer

CATEGORIES = ('direct', 'transition', 'all')
METHODS = ('model', 'static', 'source_offsets', 'copy_source')


def onset_frames(seqs) -> np.ndarray:
  """(N,) raw frame of each sequence's behavior onset (nearest frame at 50 Hz)."""
  if 'behavior_onset' not in seqs.extras:
    raise ValueError(f'{seqs.name}/{seqs.split} has no behavior_onset feature; rebuild the '
                     'synthetic_motion dataset (version >= 1.1.0).')
  return np.rint(np.asarray(seqs.extras['behavior_onset'], np.float64)
                 * synthetic.FPS).astype(np.int64)


def pairs(seqs, n: int, seed: int, span: int) -> tuple[np.ndarray, np.ndarray]:
  """n (source, target) index pairs: sources whose window fits after the onset, targets of
  another start posture."""
  postures = seqs.extras['posture']
  eligible = np.flatnonzero(onset_frames(seqs) + span <= seqs.lengths)
  if not len(eligible):
    raise ValueError(f'No sequence of {seqs.name}/{seqs.split} has {span} frames after its '
                     'behavior onset; use longer sequences (the default builder config).')
  rng = np.random.default_rng(seed)
  src = rng.choice(eligible, size=n)
  tgt = np.array([rng.choice(np.flatnonzero(postures != postures[i])) for i in src])
  return src, tgt


def source_and_truth(seqs, src, tgt, lag: int, t: int) -> tuple:
  """Aligned source windows, target starts, truths and transition flags of (src, tgt) pairs.

  Returns:
    source_m (n, t + 1, 17, 3): lag-spaced frames from each source's behavior onset;
    start_m (n, 17, 3): each target's first frame;
    truth_m (n, t, 17, 3): the source behavior rendered from the target start with no hold,
      at the frames the model predicts (1..t);
    transition (n,) bool: the target posture needs a transition into the behavior first.
  """
  span = lag * t + 1
  ex = seqs.extras
  onset = onset_frames(seqs)
  source_m = np.stack([seqs.poses[i][onset[i]:onset[i] + span:lag] for i in src])
  if source_m.shape[1] != t + 1:
    raise ValueError(f'A source window runs past its sequence ({source_m.shape[1]} of {t + 1} '
                     'frames); draw sources with `pairs`.')
  start_m = np.stack([seqs.poses[j][0] for j in tgt])
  truth_m = np.stack([
      synthetic.render(seqs.subject_names[seqs.subjects[j]], int(ex['posture'][j]),
                       int(seqs.labels[i]), int(ex['behavior_seed'][i]),
                       int(ex['placement_seed'][j]), span, hold=0.0)[lag::lag]
      for i, j in zip(src, tgt)])
  transition = np.array([synthetic.needs_transition(int(ex['posture'][j]), int(seqs.labels[i]))
                         for i, j in zip(src, tgt)], bool)
  return source_m, start_m, truth_m, transition


def references(source_m, start_m) -> dict:
  """The naive predictions (n, T, 17, 3) from source windows (n, T + 1, 17, 3) and starts."""
  t = source_m.shape[1] - 1
  root_shift = start_m[:, None, :1] - source_m[:, :1, :1]
  return {'static': np.repeat(start_m[:, None], t, axis=1),
          'source_offsets': start_m[:, None] + (source_m[:, 1:] - source_m[:, :1]),
          'copy_source': source_m[:, 1:] + root_shift}


def _mpjpe_table(pred, truth, ts) -> dict:
  err = transfer.mpjpe_mm(pred, truth)
  return {'mean': err['mean'],
          **{str(k): float(err['per_frame'][transfer.TDE_INDICES[k]]) for k in ts}}


def run(ctx: Context, *, seed: int, num_pairs: int, classifier_steps: int):
  """Yields the pair counts and, per category, MPJPE tables and recognition accuracies."""
  if ctx.config.data.name != 'synthetic_motion':
    yield 'skipped', 'ground-truth transfer needs the synthetic_motion dataset'
    return
  seqs, lag, t = ctx.test_seqs, ctx.frame_lag, ctx.seq_len
  span = lag * t + 1
  src, tgt = pairs(seqs, num_pairs, seed + 6, span)
  source_m, start_m, truth_m, transition = source_and_truth(seqs, src, tgt, lag, t)
  norm = ctx.normalizer
  mu, _ = ctx.posterior(norm.normalize(source_m)[:, :-1])
  reenacted = ctx.decode(mu, norm.normalize(start_m))
  predictions = {'model': norm.denormalize(reenacted), **references(source_m, start_m)}

  ts = t_values(t)
  masks = {'direct': ~transition, 'transition': transition, 'all': np.ones_like(transition)}
  out = {'num_pairs': int(len(src)), 'T': list(ts)}
  for cat, mask in masks.items():
    out[cat] = {'num_pairs': int(mask.sum())}
    if mask.any():
      for name, pred in predictions.items():
        out[cat][f'mpjpe_mm_{name}'] = _mpjpe_table(pred[mask], truth_m[mask], ts)

  train = fixed_windows(ctx.train, num_pairs * 2, seed + 7, paired=False)
  real = fixed_windows(ctx.test, num_pairs, seed + 8, paired=False)
  behavior = seqs.labels[src]
  truth_n = norm.normalize(truth_m)
  extra = {}
  for cat, mask in masks.items():
    if mask.any():
      extra[f'reenacted_{cat}'] = (reenacted[mask], behavior[mask])
      extra[f'truth_{cat}'] = (truth_n[mask], behavior[mask])
  acc = probes.sequence_classifier_accuracy(
      train['poses'][:, :-1], train['label'], real['poses'][:, :-1], real['label'],
      len(seqs.label_names), seed=seed, steps=classifier_steps, extra_test_sets=extra)
  for cat, mask in masks.items():
    if mask.any():
      out[cat]['recognition_accuracy'] = {'reenacted': acc[f'reenacted_{cat}_accuracy'],
                                          'truth': acc[f'truth_{cat}_accuracy']}
  out['recognition_real_test_windows'] = acc['test_accuracy']
  yield from out.items()
