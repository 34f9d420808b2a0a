"""Suite 5 (new): behavior transfer scored against ground truth, on the synthetic dataset.

The paper could only measure transfer indirectly (TDE, d_beta, classifiers): on real data the
true re-enactment of behavior b from another start posture does not exist. The procedural
generator can render it: for a source sequence (behavior b, its timing seed) and a target
sequence of another start posture (its subject, posture and placement), the truth is
`synthetic.render(target subject, target posture, b, source behavior_seed, target
placement_seed)`.

Protocol: test-subject pairs (source, target) with different start postures. The source window
is the first seq_len + 1 lag-spaced frames of the source sequence (start posture at rest, then
the behavior); the model re-enacts mu(source) from the target's first frame. Reported:
- MPJPE in mm between re-enactment and truth, per T and averaged over the window, beside two
  naive references: `static` (holding the target start posture) and `source_offsets` (adding
  the source's per-joint displacements since its first frame to the target start posture);
- behavior recognition: a sequence classifier trained on train-split windows (behavior labels)
  recognises the source's behavior in the re-enactments; its accuracy on the true renderings
  and on real test windows is shown for scale.
"""

import numpy as np

from bds_jax import synthetic
from bds_jax.evaluation.context import EvalContext
from bds_jax.data.pipeline import fixed_windows
from bds_jax.evaluation.transfer import t_values
from bds_jax.metrics import probes
from bds_jax.metrics import transfer


def pairs(ctx: EvalContext, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  postures = ctx.test_seqs.extras['posture']
  rng = np.random.default_rng(seed)
  src = rng.integers(len(postures), size=n)
  tgt = np.array([rng.choice(np.flatnonzero(postures != postures[i])) for i in src])
  return src, tgt


def run(ctx: EvalContext, cfg) -> dict:
  if ctx.config.data.name != 'synthetic_motion':
    return {'skipped': 'ground-truth transfer needs the synthetic_motion dataset'}
  c = cfg.gt_transfer
  seqs, lag, t = ctx.test_seqs, ctx.frame_lag, ctx.seq_len
  span = lag * t + 1
  src, tgt = pairs(ctx, c.num_pairs, cfg.seed + 6)
  ex = seqs.extras
  source_m = np.stack([seqs.poses[i][0:span:lag] for i in src])  # (n, T + 1, 17, 3)
  start_m = np.stack([seqs.poses[j][0] for j in tgt])
  truth_m = np.stack([
      synthetic.render(seqs.subject_names[seqs.subjects[j]], int(ex['posture'][j]),
                       int(seqs.labels[i]), int(ex['behavior_seed'][i]),
                       int(ex['placement_seed'][j]), span)[lag::lag]
      for i, j in zip(src, tgt)])  # (n, T, 17, 3)
  norm = ctx.normalizer
  mu, _ = ctx.posterior(norm.normalize(source_m)[:, :-1])
  reenacted = ctx.decode(mu, norm.normalize(start_m))
  reenacted_m = norm.denormalize(reenacted)

  ts = t_values(t)
  out = {'num_pairs': int(len(src)), 'T': list(ts)}
  offsets = start_m[:, None] + (source_m[:, 1:] - source_m[:, :1])
  for name, pred in (('model', reenacted_m), ('static', np.repeat(start_m[:, None], t, axis=1)),
                     ('source_offsets', offsets)):
    err = transfer.mpjpe_mm(pred, truth_m)
    out[f'mpjpe_mm_{name}'] = {'mean': err['mean'],
                               **{str(k): float(err['per_frame'][transfer.TDE_INDICES[k]])
                                  for k in ts}}
  train = fixed_windows(ctx.train, c.num_pairs * 2, cfg.seed + 7, paired=False)
  real = fixed_windows(ctx.test, c.num_pairs, cfg.seed + 8, paired=False)
  behavior = seqs.labels[src]
  acc = probes.sequence_classifier_accuracy(
      train['poses'][:, :-1], train['label'], real['poses'][:, :-1], real['label'],
      len(seqs.label_names), seed=cfg.seed, steps=c.classifier_steps,
      extra_test_sets={'reenacted': (reenacted, behavior),
                       'truth': (norm.normalize(truth_m), behavior)})
  out['recognition_accuracy'] = {'reenacted': acc['reenacted_accuracy'],
                                 'truth': acc['truth_accuracy'],
                                 'real_test_windows': acc['test_accuracy']}
  return out
