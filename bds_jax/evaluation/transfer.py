"""Suite 1: behavior transfer, the paper's Table 1 (reference spec §5.1, §5.2, §5.5).

Transfer pairs: a source window x_s and a target window x_t of a *different* class (behavior /
action), both from the test split. The transfer re-enacts mu(x_s) from x_t's first frame.

Reported (ours, then the paper-comparable variant where upstream differs):
- TDE(T): `metrics.transfer.tde` (time-aligned) and `tde_upstream` (upstream's one-frame
  offset), both in z-scored units as the paper, plus the aligned one in metres.
- RE(T): a posture regressor from mu to the source pose at T, trained on TRAIN-split codes and
  scored on the test codes; `RE_paper_same_data` repeats upstream's train-and-score-on-test.
  Targets are world z-scores, the paper's. A body-frame run (`model.frame='body'`) cannot
  carry placement or heading in its code, so there that RE mostly measures placement; such runs
  also get `RE_body` and `RE_body_paper_same_data`, on the posture at T in the body frame of the
  window's first frame (the model's own body-frame units), and `RE_kinds` names both.
- acc: a linear probe on mu (train codes -> test codes); gt_acc: the LSTM classifier on raw
  sequences, same protocol (upstream trained both during stage 1 and reported test accuracy).
- d_beta: ||mu(x_s) - mu(transfer)|| with the transfer decoded from a posterior sample (from mu
  for the deterministic cae); its same-class reference ||mu(x_s) - mu(x_rel)||; and upstream's
  per-batch-of-64 statistic.

Transfer and the probes need classes: on data with fewer than two classes in a split (a user's
unlabelled motion, docs/own_mocap.md) the suite reports `skipped` and why, instead of metrics.
"""

import logging

import jax.numpy as jnp
import numpy as np

from bds_jax.data.pipeline import fixed_windows
from bds_jax.evaluation import report
from bds_jax.evaluation.report import fmt
from bds_jax.evaluation.context import Context
from bds_jax.metrics import probes
from bds_jax.metrics import transfer
from bds_jax.models import build as model_build

log = logging.getLogger(__name__)


def t_values(seq_len: int) -> tuple[int, ...]:
  """The paper's T values whose prediction index exists at this sequence length."""
  return tuple(t for t in transfer.TDE_T_VALUES if transfer.TDE_INDICES[t] < seq_len)


def body_frame_targets(frame, windows, k: int) -> np.ndarray:
  """Posture k of normalised windows (N, L, D), in the body frame of each window's first
  frame (`BodyFrame.encode`: x, y in units of model.body_xy_scale, z z-scored): (N, D)."""
  x = jnp.asarray(windows)
  return np.asarray(frame.encode(x[:, k], frame.frame_of(x[:, 0])))


def missing_classes(ctx: Context) -> str | None:
  """Why the suite cannot run on ctx's data (a split whose windows are all of one class), or
  None."""
  for w in (ctx.train, ctx.test):
    if w.num_classes < 2:
      names = w.seqs.label_names
      one = names[int(w.labels[w.counts > 0][0])] if len(names) else '?'
      return (f'needs at least two classes (it pairs windows of different classes and probes '
              f'the code for the class), but every window of {w.seqs.name}/{w.seqs.split} is of '
              f'class {one!r}; for your own motion, put each class\'s files in a folder of its '
              'own (docs/own_mocap.md)')
  return None


def _re(mu_train, train_targets, mu, test_targets, seed: int, steps: int):
  """(held-out RE, upstream's same-data RE) of one kind of target."""
  held_out = probes.posture_regression_error(mu_train, train_targets, mu, test_targets,
                                             seed=seed, steps=steps)['test_re']
  same = probes.posture_regression_error_paper_same_data(mu, test_targets, seed=seed,
                                                         iterations=steps)
  return held_out, same


def run(ctx: Context, *, seed: int, num_windows: int, train_windows: int, probe_steps: int,
        classifier_steps: int):
  """Yields the Table 1 metrics of `num_windows` test transfer pairs (see the module doc)."""
  why = missing_classes(ctx)
  if why:
    log.warning('transfer suite skipped: it %s.', why)
    yield 'skipped', f'the transfer suite {why}'
    return
  test = fixed_windows(ctx.test, num_windows, seed, paired=True, related=True)
  train = fixed_windows(ctx.train, train_windows, seed + 1, paired=False)
  xs = test['poses']  # (N, T + 1, D) normalised
  mu, logstd = ctx.posterior(xs[:, :-1])
  starts = test['paired_poses'][:, 0]
  cross = ctx.decode(mu, starts)
  ts = t_values(ctx.seq_len)

  yield 'num_pairs', int(len(xs))
  yield 'T', list(ts)
  yield 'TDE', _keys(transfer.tde(cross, xs, ts))
  yield 'TDE_upstream', _keys(transfer.tde_upstream(cross, xs, ts))
  yield 'TDE_metres', _keys(transfer.tde(cross, xs, ts, space='metres',
                                         normalizer=ctx.normalizer))

  # d_beta: transfers decoded from a posterior sample, re-encoded.
  rng = np.random.default_rng(seed + 2)
  deterministic = ctx.config.model.variant == 'cae'
  z = mu if deterministic else mu + np.exp(logstd) * rng.standard_normal(mu.shape, np.float32)
  mu_back, _ = ctx.posterior(ctx.decode(z, starts))
  yield 'd_beta', transfer.d_beta(mu, mu_back)
  mu_rel, _ = ctx.posterior(test['related_poses'][:, :-1])
  yield 'd_beta_same_class_reference', transfer.d_beta(mu, mu_rel)
  if len(mu) >= 64:
    yield 'd_beta_upstream', transfer.d_beta(mu, mu_back, batch_size=64)

  # Probes: trained on train-split codes, scored on the test pairs' sources.
  mu_train, _ = ctx.posterior(train['poses'][:, :-1])
  re_test, re_paper = {}, {}
  for t in ts:
    k = transfer.TDE_INDICES[t]
    re_test[str(t)], re_paper[str(t)] = _re(mu_train, train['poses'][:, k], mu, xs[:, k], seed,
                                            probe_steps)
  yield 'RE', re_test
  yield 'RE_paper_same_data', re_paper
  frame = model_build.behavior_frame(ctx.config, ctx.normalizer)
  if frame is not None:
    re_test, re_paper = {}, {}
    for t in ts:
      k = transfer.TDE_INDICES[t]
      re_test[str(t)], re_paper[str(t)] = _re(
          mu_train, body_frame_targets(frame, train['poses'], k), mu,
          body_frame_targets(frame, xs, k), seed, probe_steps)
    yield 'RE_body', re_test
    yield 'RE_body_paper_same_data', re_paper
    yield 'RE_kinds', {
        'RE': 'world z-scores (the paper\'s targets; mostly placement for this body-frame code)',
        'RE_body': f'the posture at T in the body frame of the window\'s first frame (x, y in '
                   f'units of {frame.xy_scale:g} m, z in world z-scores)'}
  num_classes = len(ctx.test_seqs.label_names)
  probe = probes.linear_probe_accuracy(mu_train, train['label'], mu, test['label'], num_classes,
                                       seed=seed, steps=probe_steps)
  yield 'acc', probe['test_accuracy']
  yield 'acc_train', probe['train_accuracy']
  gt = probes.sequence_classifier_accuracy(train['poses'][:, :-1], train['label'],
                                           xs[:, :-1], test['label'], num_classes, seed=seed,
                                           steps=classifier_steps)
  yield 'gt_acc', gt['test_accuracy']
  yield 'chance_acc', float(np.max(np.bincount(test['label'])) / len(test['label']))


def _keys(d: dict) -> dict:
  return {str(k): float(v) for k, v in d.items()}


def table(results: dict, dataset: str) -> str:
  """Paper Table 1 layout: one row per evaluated run, then the paper's rows."""
  skipped = [f'- {name}: skipped ({r["skipped"]}).' for name, r in results.items()
             if 'skipped' in r]
  results = {name: r for name, r in results.items() if 'skipped' not in r}
  if not results:  # data without classes (docs/own_mocap.md)
    return '\n'.join([f'## Behavior transfer (paper Table 1){report.dataset_note(dataset)}', '']
                     + skipped) + '\n'
  ts = next(iter(results.values()))['T']
  head = ' | '.join(f'T={t} RE | T={t} TDE' for t in ts)
  lines = [f'## Behavior transfer (paper Table 1){report.dataset_note(dataset)}',
           'RE: held-out posture regression error from μ (higher = less posture in the code); '
           'TDE: time-aligned re-enactment vs source (z-scored units); acc: linear probe on μ '
           '(train → test); d_β: mean ± std. Paper-comparable variants (upstream\'s TDE offset, '
           'RE trained and scored on test) in parentheses.', '',
           f'| model | {head} | acc | d_β |', '|' + '---|' * (2 * len(ts) + 3)]
  for name, r in results.items():
    body = 'RE_body' in r  # a body-frame run: RE on both kinds of target, each labelled
    cells = ' | '.join(f'{fmt(r["RE"][str(t)])} ({fmt(r["RE_paper_same_data"][str(t)])}) | '
                       f'{fmt(r["TDE"][str(t)])} ({fmt(r["TDE_upstream"][str(t)])})' for t in ts)
    label = f'{name}, RE on world z-scores' if body else name
    lines.append(f'| {label} | {cells} | {fmt(r["acc"])} (gt {fmt(r["gt_acc"])}) | '
                 f'{fmt(r["d_beta"]["mean"])} ± {fmt(r["d_beta"]["std"])} |')
    if body:
      cells = ' | '.join(f'{fmt(r["RE_body"][str(t)])} '
                         f'({fmt(r["RE_body_paper_same_data"][str(t)])}) | –' for t in ts)
      lines.append(f'| {name}, RE on body-frame targets | {cells} | | |')
  for name, (re, tde, acc, (dm, ds)) in report.PAPER_TABLE1.items():
    at = [report.PAPER_T_VALUES.index(t) for t in ts]
    cells = ' | '.join(f'{re[i]:.2f} | {tde[i]:.2f}' for i in at)
    lines.append(f'| paper: {name} | {cells} | {acc:.2f} (gt {report.PAPER_GT_ACC:.2f}) | '
                 f'{dm:.2f} ± {ds:.2f} |')
  lines.append('')
  bodies = [r for r in results.values() if 'RE_body' in r]
  if bodies:
    lines += ['RE kinds. World: the source posture at T in world z-scores, the paper\'s '
              'targets; the paper\'s RE column is this measurement (of a world-frame model). '
              'A body-frame run\'s code cannot carry where the person stands or faces, by '
              'construction, so its world RE mostly measures that placement and is inflated: '
              'it is neither the paper\'s number nor a measure of disentanglement. Body frame: '
              f'{bodies[0]["RE_kinds"]["RE_body"]}; it measures the posture left in the code '
              'and has no paper counterpart.', '']
  for name, r in results.items():
    lines.append(f'- {name}: same-class reference d_β = '
                 f'{fmt(r["d_beta_same_class_reference"]["mean"])}; chance accuracy '
                 f'{fmt(r["chance_acc"])}; {r["num_pairs"]} test pairs.')
  return '\n'.join(lines + skipped) + '\n'
