"""Suite 2: realism of generated motion, the paper's Table 3 (reference spec §5.3).

Real sequences are test windows (their 50 input frames). Generated kinds, one per window:
  self      the window's own behavior re-enacted from its first frame (posterior mean);
  transfer  the same behavior re-enacted from the first frame of a window of another class;
  prior     a code z ~ N(0, I) decoded from the window's last frame;
  flow      a code T^-1(u) of the flow prior, from the same start (when a flow is trained).
For each kind its own GRU classifier is trained on one half of the windows (real vs.
generated) and scored on the other half: held-out accuracy (0.5 = indistinguishable) and ROC
AUC. `paper_mean_p_real` is upstream's Table 3 number: the mean predicted P(real) of the
generated sequences the classifier was trained on (0.5 is ideal; upstream never trained its
"self" classifier, so its 0.49 column carries no information).

The halves are split by test *sequence* (`split_sequences`): windows of one sequence that start
a raw frame apart are near-copies, so a split of randomly drawn windows by position left
almost every held-out window with a training window of the same sequence a few frames away.
Each generated sample stays in the half of the window it was made from, and a transfer's target
start posture is drawn from a window of that half too, so no sequence feeds both halves. We do
not split by subject: sequences share no frames, which is all the held-out score needs, and
Human3.6M's test split has only two subjects (S9, S11), which would make the split one fixed
pair and mix cross-subject generalisation into the realism score.

On data of one class (a user's unlabelled motion, docs/own_mocap.md) there is no other class
to take a transfer's start posture from: it is taken from any window of the same half.
"""

import jax
import numpy as np

from bds_jax.evaluation import report
from bds_jax.evaluation.report import fmt
from bds_jax.evaluation.context import Context
from bds_jax.metrics import probes

PRIOR_NAMES = {'gaussian': 'prior', 'flow': 'flow'}
TRAIN, HELDOUT = 0, 1


def split_sequences(counts, labels, seed: int) -> np.ndarray:
  """Assigns every sequence to TRAIN (0) or HELDOUT (1); -1 for sequences without windows.

  First two sequences of every class (drawn at random) go one to each half, so both halves can
  pair windows with another class for transfer and hold similar classes. The rest, largest
  first (ties in seeded random order), go to the half with fewer windows, which balances the
  halves' window counts to within about one sequence.
  """
  counts, labels = np.asarray(counts), np.asarray(labels)
  rng = np.random.default_rng(seed)
  half = np.full(len(counts), -1, np.int64)
  total = np.zeros(2, np.int64)

  def put(s, h):
    half[s] = h
    total[h] += counts[s]

  rest = []
  for label in np.unique(labels[counts > 0]):
    order = rng.permutation(np.flatnonzero((labels == label) & (counts > 0)))
    lighter = int(np.argmin(total))
    for i, s in enumerate(sorted(order[:2], key=lambda s: -counts[s])):
      put(s, lighter if i == 0 else 1 - lighter)  # the larger one to the lighter half
    rest.extend(order[2:])
  rest = rng.permutation(np.array(rest, np.int64))
  for s in rest[np.argsort(-counts[rest], kind='stable')]:
    put(s, int(np.argmin(total)))
  return half


def _locate(seqs: np.ndarray, counts: np.ndarray, u: np.ndarray) -> tuple:
  """Indices u into the windows of `seqs` (in order) -> (sequence, start) arrays."""
  cum = np.cumsum(counts[seqs])
  k = np.searchsorted(cum, u, side='right')
  return seqs[k], u - (cum[k] - counts[seqs[k]])


def draw(counts, labels, num: int, seed: int) -> dict:
  """`num` windows, half from each half of `split_sequences`, each with a transfer pair.

  Returns int arrays of length num, TRAIN rows first: 'half', 'seq', 'start' (the window) and
  'paired_seq', 'paired_start' (a window of another class from the same half; of any class
  when the data has one). Within a half, windows are uniform over its windows (without
  replacement when possible), pairs uniform over its windows of other classes.
  """
  counts, labels = np.asarray(counts), np.asarray(labels)
  half = split_sequences(counts, labels, seed)
  if num < 2 or not ((half == TRAIN).any() and (half == HELDOUT).any()):
    raise ValueError(f'Realism needs at least 2 windows ({num} asked) from at least two test '
                     f'sequences with a window ({int((half >= 0).sum())} here).')
  rng = np.random.default_rng((seed, 1))  # a stream apart from the split's
  one_class = len(np.unique(labels[counts > 0])) == 1
  out = {k: [] for k in ('half', 'seq', 'start', 'paired_seq', 'paired_start')}
  for h, n in ((TRAIN, num // 2), (HELDOUT, num - num // 2)):
    seqs = np.flatnonzero(half == h)
    available = int(counts[seqs].sum())
    seq, start = _locate(seqs, counts, rng.choice(available, size=n, replace=n > available))
    paired_seq, paired_start = np.zeros(n, np.int64), np.zeros(n, np.int64)
    for label in np.unique(labels[seq]):
      rows = np.flatnonzero(labels[seq] == label)
      others = seqs if one_class else seqs[labels[seqs] != label]
      if not len(others):
        raise ValueError(f'Cannot pair class {label} for transfer: one half of the realism '
                         'split holds no window of another class (too few test sequences).')
      u = rng.integers(int(counts[others].sum()), size=len(rows))
      paired_seq[rows], paired_start[rows] = _locate(others, counts, u)
    for k, v in zip(out, (np.full(n, h), seq, start, paired_seq, paired_start)):
      out[k].append(v)
  return {k: np.concatenate(v).astype(np.int64) for k, v in out.items()}


def generated(ctx: Context, n: int, seed: int) -> tuple:
  """The draw (see `draw`), real windows (n, T, D) and {kind: generated (n, T, D)}, normalised.

  Row i of every generated kind is made from real window i, so it belongs to draw['half'][i].
  """
  w = ctx.test
  d = draw(w.counts, w.labels, n, seed)
  xs = np.stack([w.window(s, t) for s, t in zip(d['seq'], d['start'])])
  paired = np.stack([w.window(s, t) for s, t in zip(d['paired_seq'], d['paired_start'])])
  real = xs[:, :-1]
  mu, _ = ctx.posterior(real)
  fakes = {'self': ctx.decode(mu, xs[:, 0]), 'transfer': ctx.decode(mu, paired[:, 0])}
  key = jax.random.key(seed)
  for i, prior in enumerate(ctx.priors):
    codes = ctx.prior_codes(n, jax.random.fold_in(key, i), prior)
    fakes[PRIOR_NAMES[prior]] = ctx.decode(codes, xs[:, -1])
  return d, real, fakes


def run(ctx: Context, *, seed: int, num_windows: int, steps: int):
  """Yields the window counts, then one classifier's scores per generated kind."""
  d, real, fakes = generated(ctx, num_windows, seed + 3)
  tr, te = d['half'] == TRAIN, d['half'] == HELDOUT
  yield 'num_windows', int(len(real))
  yield 'num_heldout_windows', int(te.sum())
  yield 'num_sequences', {k: len(np.unique(d['seq'][m])) for k, m in (('train', tr),
                                                                      ('heldout', te))}
  for kind, fake in fakes.items():
    r = probes.realism_classifier(real[tr], fake[tr], real[te], fake[te], seed=seed, steps=steps)
    yield kind, {'heldout_accuracy': r['heldout_accuracy'], 'heldout_auc': r['heldout_auc'],
                 'paper_mean_p_real': r['paper_mean_p_real_fake_train'],
                 'heldout_mean_p_real': r['heldout_mean_p_real_fake']}


def table(results: dict, dataset: str) -> str:
  kinds = ('self', 'transfer', 'prior', 'flow')
  lines = [f'## Realism (paper Table 3){report.dataset_note(dataset)}',
           'Held-out accuracy of a real-vs-generated GRU classifier (0.5 = indistinguishable) '
           '/ ROC AUC; in parentheses the paper-comparable mean P(real) of the generated '
           'training sequences (0.5 ideal).', '',
           '| model | ' + ' | '.join(kinds) + ' |', '|' + '---|' * (len(kinds) + 1)]
  for name, r in results.items():
    cells = [f'{fmt(r[k]["heldout_accuracy"])} / {fmt(r[k]["heldout_auc"])} '
             f'({fmt(r[k]["paper_mean_p_real"])})' if k in r else '–' for k in kinds]
    lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
  for name, row in report.PAPER_TABLE3.items():
    lines.append(f'| paper: {name} | ' + ' | '.join(f'({row[k]:.2f})' for k in kinds) + ' |')
  return '\n'.join(lines) + '\n'
