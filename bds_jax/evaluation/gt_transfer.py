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
- The truth is `procedural.render(target subject, target posture, b, source behavior_seed,
  target placement_seed, hold=0)`: the target starts moving at once, so the behavior starts at
  the same model frame as in the source window, unless the target's posture needs a transition
  into b first (standing up to walk, say). Pairs are reported by that category: `direct`
  (no transition; the truth is the source's behavior, aligned) and `transition` (the truth
  spends its first ~0.7-1.3 s on the transition); `all` pools them.

Reported, per category: MPJPE in mm between prediction and truth, per T and averaged over the
window, for the model and three naive references (and per behavior class, model against
static):
- `static`: holding the target start posture;
- `source_offsets`: the source's per-joint displacements since its first frame, added to the
  target start posture;
- `copy_source`: the source window itself, translated so that its root starts at the target's.
`self` re-enacts each source window from its own first frame against the window itself: how
much of the behavior the code carries at all (the ceiling for transfer). And behavior
recognition: a sequence classifier trained on train-split windows (behavior
labels) recognises the source's behavior in the re-enactments; its accuracy on the true
renderings and on real test windows is shown for scale.
"""

import jax.numpy as jnp
import numpy as np

from bds_jax import procedural
from bds_jax.data import datasets
from bds_jax.data.pipeline import fixed_windows
from bds_jax.evaluation.report import fmt
from bds_jax.evaluation.context import Context
from bds_jax.evaluation.transfer import t_values
from bds_jax.metrics import probes
from bds_jax.metrics import transfer
from bds_jax.models import body_frame

CATEGORIES = ('self', 'direct', 'transition')
METHODS = ('model', 'static', 'source_offsets', 'copy_source')


def onset_frames(seqs) -> np.ndarray:
  """(N,) raw frame of each sequence's behavior onset (nearest frame at 50 Hz)."""
  onset = seqs.onset_frames()
  if onset is None:
    raise ValueError(f'{seqs.name}/{seqs.split} has no behavior_onset feature; rebuild the '
                     'synthetic_motion dataset (version >= 1.1.0).')
  return onset


def eligible_sources(seqs, span: int) -> np.ndarray:
  """Indices of the sequences with `span` raw frames after their behavior onset."""
  return np.flatnonzero(onset_frames(seqs) + span <= seqs.lengths)


def pairs(seqs, n: int, seed: int, span: int) -> tuple[np.ndarray, np.ndarray]:
  """n (source, target) index pairs: sources whose window fits after the onset, targets of
  another start posture."""
  postures = seqs.extras['posture']
  eligible = eligible_sources(seqs, span)
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
      procedural.render(seqs.subject_names[seqs.subjects[j]], int(ex['posture'][j]),
                       int(seqs.labels[i]), int(ex['behavior_seed'][i]),
                       int(ex['placement_seed'][j]), span, hold=0.0)[lag::lag]
      for i, j in zip(src, tgt)])
  transition = np.array([procedural.needs_transition(int(ex['posture'][j]), int(seqs.labels[i]))
                         for i, j in zip(src, tgt)], bool)
  return source_m, start_m, truth_m, transition


def reenact(ctx: Context, source_m, start_m) -> tuple[np.ndarray, np.ndarray]:
  """Each source window's (n, T + 1, 17, 3) code μ decoded from its own first frame and from
  the target start (n, 17, 3): (self, transferred) re-enactments, each (n, T, 17, 3) metres."""
  norm = ctx.normalizer
  mu, _ = ctx.posterior(norm.normalize(source_m)[:, :-1])
  own = ctx.decode(mu, norm.normalize(source_m[:, 0]))
  moved = ctx.decode(mu, norm.normalize(start_m))
  return norm.denormalize(own), norm.denormalize(moved)


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


def canonical(x_m) -> np.ndarray:
  """(N, T, 51) of metre windows (N, T, 17, 3) in their first frame's body frame."""
  x = jnp.asarray(x_m, jnp.float32)
  origin, cos, sin = body_frame.reference_frame(x[:, 0])
  body = body_frame.to_body(x, origin, cos, sin)
  return np.asarray(body).reshape(*x.shape[:2], -1)


def _by_class(model, static, truth, labels, names) -> dict:
  """{class: (pairs, model mean MPJPE mm, static mean MPJPE mm)} over the classes present."""
  out = {}
  for c in np.unique(labels):
    m = labels == c
    out[names[int(c)]] = [int(m.sum()), transfer.mpjpe_mm(model[m], truth[m])['mean'],
                          transfer.mpjpe_mm(static[m], truth[m])['mean']]
  return out


def run(ctx: Context, *, seed: int, num_pairs: int, classifier_steps: int):
  """Yields the pair counts and, per category, MPJPE tables and recognition accuracies."""
  if not datasets.get(ctx.config.data.name).true_renderings:
    yield 'skipped', ('ground-truth transfer needs a dataset whose generator renders the truth '
                      '(synthetic_motion)')
    return
  seqs, lag, t = ctx.test_seqs, ctx.frame_lag, ctx.seq_len
  span = lag * t + 1
  src, tgt = pairs(seqs, num_pairs, seed + 6, span)
  source_m, start_m, truth_m, transition = source_and_truth(seqs, src, tgt, lag, t)
  norm = ctx.normalizer
  own, reenacted = reenact(ctx, source_m, start_m)
  predictions = {'model': reenacted, **references(source_m, start_m)}

  ts = t_values(t)
  # Transition pairs are never pooled with direct ones: their truth first moves into the
  # behavior, which a code of the behavior alone does not say.
  masks = {'direct': ~transition, 'transition': transition}
  out = {'num_pairs': int(len(src)), 'T': list(ts)}
  names = seqs.label_names
  behavior = seqs.labels[src]
  out['self'] = {'num_pairs': int(len(src)),
                 'mpjpe_mm_model': _mpjpe_table(own, source_m[:, 1:], ts),
                 'mpjpe_mm_static': _mpjpe_table(
                     np.repeat(source_m[:, :1], t, axis=1), source_m[:, 1:], ts),
                 'by_class': _by_class(own, np.repeat(source_m[:, :1], t, 1),
                                       source_m[:, 1:], behavior, names)}
  for cat, mask in masks.items():
    out[cat] = {'num_pairs': int(mask.sum())}
    if mask.any():
      for name, pred in predictions.items():
        out[cat][f'mpjpe_mm_{name}'] = _mpjpe_table(pred[mask], truth_m[mask], ts)
      out[cat]['by_class'] = _by_class(predictions['model'][mask], predictions['static'][mask],
                                        truth_m[mask], behavior[mask], names)

  # The classifier sees each window in its first frame's body frame (metres): where a person
  # stands and faces says nothing about the behavior. It learns from onset-aligned windows of
  # the train split (the truths' distribution) and as many random ones.
  train_seqs = ctx.train_seqs
  tr_src, _ = pairs(train_seqs, num_pairs * 2, seed + 7, span)
  onset = onset_frames(train_seqs)
  aligned = np.stack([train_seqs.poses[i][onset[i]:onset[i] + span:lag][:t] for i in tr_src])
  rand = fixed_windows(ctx.train, num_pairs * 2, seed + 9, paired=False)
  real = fixed_windows(ctx.test, num_pairs, seed + 8, paired=False)
  train_x = np.concatenate([aligned, norm.denormalize(rand['poses'][:, :-1])])
  train_y = np.concatenate([train_seqs.labels[tr_src], rand['label']])
  extra = {}
  for cat, mask in masks.items():
    if mask.any():
      extra[f'reenacted_{cat}'] = (canonical(predictions['model'][mask]), behavior[mask])
      extra[f'truth_{cat}'] = (canonical(truth_m[mask]), behavior[mask])
  acc = probes.sequence_classifier_accuracy(
      canonical(train_x), train_y, canonical(norm.denormalize(real['poses'][:, :-1])),
      real['label'], len(seqs.label_names), seed=seed, steps=classifier_steps,
      learning_rate=1e-3, extra_test_sets=extra)
  for cat, mask in masks.items():
    if mask.any():
      out[cat]['recognition_accuracy'] = {'reenacted': acc[f'reenacted_{cat}_accuracy'],
                                          'truth': acc[f'truth_{cat}_accuracy']}
  out['recognition_real_test_windows'] = acc['test_accuracy']
  yield from out.items()


def table(results: dict, dataset: str) -> str:
  del dataset
  lines = ['## Ground-truth transfer (synthetic dataset; new)',
           'MPJPE (mm) between the re-enactment and the generator\'s true rendering of the '
           'source behavior from the target start posture, at T and averaged. The source window '
           'starts at its behavior onset and the truth starts moving at once, so both show the '
           'behavior from the first frame. `self`: each source re-enacted from its own first '
           'frame (what the code carries at all); `direct`: the target posture needs no '
           'transition; `transition`: the truth first moves into the behavior (e.g. stands up), '
           'which a code of the behavior alone does not say, so these pairs are reported apart '
           'and never pooled. Naive references: holding the start posture (static), adding the '
           'source\'s joint displacements to the start posture (source offsets), and the source '
           'window moved to the target\'s root (copy source).',
           '']
  for name, r in results.items():
    if 'skipped' in r:
      lines.append(f'- {name}: skipped ({r["skipped"]}).')
      continue
    ts = r['T']
    for cat in ('self', 'direct', 'transition'):
      rc = r.get(cat, {})
      if not rc.get('num_pairs'):
        continue
      lines += [f'| {name}, {cat} ({rc["num_pairs"]} pairs) | ' +
                ' | '.join(f'T={t}' for t in ts) + ' | mean | × static |',
                '|' + '---|' * (len(ts) + 3)]
      static = rc['mpjpe_mm_static']['mean']
      for kind in ('model', 'static', 'source_offsets', 'copy_source'):
        if f'mpjpe_mm_{kind}' not in rc:
          continue
        m = rc[f'mpjpe_mm_{kind}']
        lines.append(f'| {kind} | ' + ' | '.join(fmt(m[str(t)], 0) for t in ts) +
                     f' | {fmt(m["mean"], 0)} | {fmt(m["mean"] / static, 2)} |')
      lines.append('')
      if rc.get('by_class'):
        lines += ['| class | pairs | model | static | × static |', '|---|---|---|---|---|']
        lines += [f'| {c} | {n} | {fmt(m, 0)} | {fmt(st, 0)} | {fmt(m / st, 2)} |'
                  for c, (n, m, st) in rc['by_class'].items()]
        lines.append('')
      if 'recognition_accuracy' in rc:
        acc = rc['recognition_accuracy']
        lines += [f'Behavior recognised in the re-enactments: {fmt(acc["reenacted"])} (on the '
                  f'true renderings {fmt(acc["truth"])}).', '']
    lines += [f'Classifier accuracy on real test windows: '
              f'{fmt(r["recognition_real_test_windows"])}; {r["num_pairs"]} pairs in all.', '']
  return '\n'.join(lines) + '\n'
