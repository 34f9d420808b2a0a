"""Suite 3: diversity and best-of-N accuracy, the paper's Tables 2 and 4 (reference spec §5.4).

Conditionings are random test windows that have a true future: the start posture is the
window's last frame (frame seq_len at the model's lag, as upstream's `target_s[:, -1]`), the
future the next seq_len lag-spaced frames. From each start N codes are drawn from the Gaussian
prior and, when trained, the flow, and decoded. ASD, FSD, APD, ADE and FDE
(`metrics.diversity`) are computed in metres on the 51-D world-coordinate poses, per
conditioning, and averaged. The N = 10 figures use the first 10 of the N = 50 samples (the
same distribution as a separate draw, at a fifth of the cost).
"""

import jax
import numpy as np

from bds_jax.evaluation import report
from bds_jax.evaluation.report import fmt
from bds_jax.evaluation.context import Context
from bds_jax.metrics import diversity


def conditionings(ctx: Context, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """n (start (D,), future (T, D)) pairs, normalised, drawn uniformly over valid positions."""
  lag, t = ctx.frame_lag, ctx.seq_len
  span = 2 * lag * t + 1  # the window and its future
  counts = np.maximum(ctx.test_seqs.lengths - span + 1, 0)
  if counts.sum() == 0:
    raise ValueError(f'No test sequence holds a window and its future ({span} frames).')
  rng = np.random.default_rng(seed)
  picks = rng.choice(int(counts.sum()), size=n, replace=n > counts.sum())
  offsets = np.concatenate([[0], np.cumsum(counts)])
  starts, futures = [], []
  for p in picks:
    seq = int(np.searchsorted(offsets, p, side='right') - 1)
    s = int(p - offsets[seq]) + lag * t  # the window's last frame
    data = ctx.test.data[seq]
    starts.append(data[s])
    futures.append(data[s + lag:s + lag * t + 1:lag])
  return np.stack(starts), np.stack(futures)


def run(ctx: Context, *, seed: int, num_conditionings: int, num_samples):
  """Yields the number of conditionings, then per prior {N: {ASD, FSD, APD, ADE, FDE}}."""
  ns = sorted(int(n) for n in num_samples)
  starts, futures = conditionings(ctx, num_conditionings, seed + 4)
  num, n_max = len(starts), ns[-1]
  futures_m = ctx.normalizer.denormalize(futures)
  yield 'num_conditionings', int(num)
  key = jax.random.key(seed + 4)
  for i, prior in enumerate(ctx.priors):
    codes = ctx.prior_codes(num * n_max, jax.random.fold_in(key, i), prior)
    seqs = ctx.decode(codes, np.repeat(starts, n_max, axis=0))
    samples = ctx.normalizer.denormalize(seqs).reshape(num, n_max, *seqs.shape[1:-1], 17, 3)
    per_n = {}
    for n in ns:
      m = diversity.diversity_metrics(samples[:, :n], futures_m)
      per_n[str(n)] = {k.upper(): float(np.mean(v)) for k, v in m.items()}
    yield prior, per_n


def table(results: dict, dataset: str) -> str:
  lines = [f'## Diversity (paper Tables 2 and 4){report.dataset_note(dataset)}',
           'Metres, world coordinates of the 17 joints; N samples per start posture.', '',
           '| model | prior | N | ASD | FSD | APD | ADE | FDE |', '|---|---|---|---|---|---|---|---|']
  for name, r in results.items():
    for prior in ('gaussian', 'flow'):
      for n, m in r.get(prior, {}).items():
        lines.append(f'| {name} | {prior} | {n} | {fmt(m["ASD"])} | {fmt(m["FSD"])} | '
                     f'{fmt(m["APD"])} | {fmt(m["ADE"])} | {fmt(m["FDE"])} |')
  for name, (a10, f10, a50, f50) in report.PAPER_TABLE2.items():
    lines.append(f'| paper: {name} | | 10 | {a10:.2f} | {f10:.2f} | | | |')
    lines.append(f'| paper: {name} | | 50 | {a50:.2f} | {f50:.2f} | | | |')
  lines.append('')
  lines.append('Paper Table 4 APD: '
               + ', '.join(f'{k} {v:.2f}' for k, v in report.PAPER_APD.items()))
  return '\n'.join(lines) + '\n'
