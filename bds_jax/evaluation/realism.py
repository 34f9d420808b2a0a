"""Suite 2: realism of generated motion, the paper's Table 3 (reference spec §5.3).

Real sequences are test windows (their 50 input frames). Generated kinds, one per window:
  self      the window's own behavior re-enacted from its first frame (posterior mean);
  transfer  the same behavior re-enacted from the first frame of a window of another class;
  prior     a code z ~ N(0, I) decoded from the window's last frame;
  flow      a code T^-1(u) of the flow prior, from the same start (when a flow is trained).
For each kind its own GRU classifier is trained on the first half of the windows (real vs.
generated) and scored on the other half: held-out accuracy (0.5 = indistinguishable) and ROC
AUC. `paper_mean_p_real` is upstream's Table 3 number: the mean predicted P(real) of the
generated sequences the classifier was trained on (0.5 is ideal; upstream never trained its
"self" classifier, so its 0.49 column carries no information).
"""

import jax

from bds_jax.evaluation.context import EvalContext
from bds_jax.data.pipeline import fixed_windows
from bds_jax.metrics import probes

PRIOR_NAMES = {'gaussian': 'prior', 'flow': 'flow'}


def generated(ctx: EvalContext, n: int, seed: int) -> tuple:
  """Real windows (n, T, D) and {kind: generated (n, T, D)}, all normalised."""
  w = fixed_windows(ctx.test, n, seed, paired=True)
  xs = w['poses']
  real = xs[:, :-1]
  mu, _ = ctx.posterior(real)
  fakes = {'self': ctx.decode(mu, xs[:, 0]), 'transfer': ctx.decode(mu, w['paired_poses'][:, 0])}
  key = jax.random.key(seed)
  for i, prior in enumerate(ctx.priors):
    codes = ctx.prior_codes(n, jax.random.fold_in(key, i), prior)
    fakes[PRIOR_NAMES[prior]] = ctx.decode(codes, xs[:, -1])
  return real, fakes


def run(ctx: EvalContext, cfg) -> dict:
  c = cfg.realism
  real, fakes = generated(ctx, c.num_windows, cfg.seed + 3)
  half = len(real) // 2
  out = {'num_windows': int(len(real))}
  for kind, fake in fakes.items():
    r = probes.realism_classifier(real[:half], fake[:half], real[half:], fake[half:],
                                  seed=cfg.seed, steps=c.steps)
    out[kind] = {'heldout_accuracy': r['heldout_accuracy'], 'heldout_auc': r['heldout_auc'],
                 'paper_mean_p_real': r['paper_mean_p_real_fake_train'],
                 'heldout_mean_p_real': r['heldout_mean_p_real_fake']}
  return out
