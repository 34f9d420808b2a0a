"""Pose-space synthesis with a trained behavior model: transfer grids, samples, loops,
interpolations and behavior-vs-posture neighbours. Each returns a `Figure` (panels for
`bds_jax.viz.animation`, a title, a caption for the report, and any numbers it measured).

Re-enactment throughout: a source's behavior code is its posterior mean μ (no sampling), decoded
from the target's start posture, as in the paper's transfer experiments.
"""

import dataclasses

import jax
import numpy as np

from bds_jax import errors
from bds_jax import sampling
from bds_jax import sharding
from bds_jax.data.windows import Windows
from bds_jax.metrics import neighbours as neighbour_metrics
from bds_jax.synthesis.inputs import Clips
from bds_jax.viz.animation import Panel


@dataclasses.dataclass
class Figure:
  rows: list
  title: str
  caption: str
  stats: dict = dataclasses.field(default_factory=dict)


def posterior_means(sampler: sampling.Sampler, x: np.ndarray, batch_size: int = 256):
  """μ (N, Z) of many normalised windows x (N, >= seq_len, D), in fixed-size batches (one
  compilation) through `bds_jax.sharding.batched`."""
  return sharding.batched(
      lambda b: sampling.posterior(sampler.model_def, sampler.params, b)[0],
      (np.ascontiguousarray(x[:, :sampler.steps]),), batch_size)


def codes(sampler: sampling.Sampler, clips: Clips) -> np.ndarray:
  """Posterior means μ (N, Z) of clips (their first seq_len frames are the model's input)."""
  mu, _ = sampler.posterior(clips.normalized[:, :sampler.steps])
  return np.asarray(jax.device_get(mu))


def transfer_grid(sampler: sampling.Sampler, sources: Clips, targets: Clips) -> Figure:
  """Sources along the top, target start postures down the side, each source's behavior
  re-enacted from each target's start posture in the cells."""
  mu = codes(sampler, sources)
  rows = [[None] + [Panel(f'source: {t}', p) for t, p in zip(sources.titles, sources.poses)]]
  for title, target in zip(targets.titles, targets.poses):
    starts = np.repeat(target[:1], len(sources), axis=0)
    out = sampler.decode(mu, starts)
    rows.append([Panel(f'target start: {title}', target[0])] +
                [Panel(f'{s.split(" #")[0]} → {title.split(" #")[0]}', o)
                 for s, o in zip(sources.titles, out)])
  return Figure(rows, 'Behavior transfer: each column\'s behavior from each row\'s start posture',
                'Top row: the source behaviors (test windows). Left column: the target start '
                'postures. Cell (i, j): source j\'s behavior code μ decoded from target i\'s '
                'first pose. A disentangled model repeats each column\'s motion in every row, '
                'from that row\'s posture.')


def samples(sampler: sampling.Sampler, starts: Clips, n: int, key) -> Figure:
  """n behaviors from the flow and n from N(0, I), each decoded from the same start posture,
  for every start posture given."""
  priors = ('flow', 'gaussian') if sampler.has_flow else ('gaussian',)
  rows = []
  for s, (title, start) in enumerate(zip(starts.titles, starts.poses)):
    for p, prior in enumerate(priors):
      z = sampler.sample_codes(n, jax.random.fold_in(key, s * len(priors) + p), prior)
      out = sampler.decode(z, np.repeat(start[:1], n, axis=0))
      rows.append([Panel(f'{prior} {i + 1} from {title.split(" #")[0]}', o)
                   for i, o in enumerate(out)])
  return Figure(rows, 'Sampled behaviors from one start posture',
                f'Each row: {n} behavior codes drawn from one prior, all decoded from the same '
                f'start posture. Priors: {", ".join(priors)} (flow: the trained normalising '
                'flow; gaussian: z ~ N(0, I), the cVAE prior).'
                + ('' if sampler.has_flow else ' This run has no flow prior (train one with '
                   'configs/flow.py).'))


def loop(sampler: sampling.Sampler, start: Clips, num_behaviors: int, key,
         prior: str) -> Figure:
  """One long sequence of chained samples: each starts from the last pose of the previous."""
  seq = sampler.sample_loop(key, start.poses[0, 0], num_behaviors, prior=prior)
  return Figure([[Panel(f'{num_behaviors} chained {prior} samples', seq)]],
                f'A {len(seq) / sampler.fps:.0f} s sequence of {num_behaviors} sampled behaviors',
                f'{num_behaviors} behaviors drawn from the {prior} prior; each is decoded from '
                f'the last pose of the one before, starting at {start.titles[0]}.')


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
  """Spherical interpolation of codes (per row), linear where they are (anti)parallel."""
  na, nb = np.linalg.norm(a, axis=-1, keepdims=True), np.linalg.norm(b, axis=-1, keepdims=True)
  cos = np.sum(a * b, -1, keepdims=True) / np.maximum(na * nb, 1e-12)
  omega = np.arccos(np.clip(cos, -1.0, 1.0))
  sin = np.sin(omega)
  safe = np.abs(sin) > 1e-6
  wa = np.where(safe, np.sin((1 - t) * omega) / np.where(safe, sin, 1.0), 1 - t)
  wb = np.where(safe, np.sin(t * omega) / np.where(safe, sin, 1.0), t)
  return wa * a + wb * b


def interpolate(sampler: sampling.Sampler, pair: Clips, start: Clips, steps: int) -> Figure:
  """Codes between the two clips' μ, linear (top row) and spherical (bottom), all decoded
  from one start posture."""
  if len(pair) < 2:
    raise errors.InputError(f'interpolate needs two source behaviors, got {len(pair)}.')
  if steps < 2:
    raise errors.InputError(f'--steps={steps}: interpolation needs at least 2 steps (the end '
                            'points).')
  mu = codes(sampler, pair)
  ts = np.linspace(0.0, 1.0, steps)
  start_pose = np.repeat(start.poses[:1, 0], steps, axis=0)
  rows = []
  for name, fn in (('linear', lambda t: (1 - t) * mu[0] + t * mu[1]),
                   ('spherical', lambda t: slerp(mu[0], mu[1], t))):
    z = np.stack([fn(t) for t in ts]).astype(np.float32)
    out = sampler.decode(z, start_pose)
    rows.append([Panel(f'{name} t={t:.2f}', o) for t, o in zip(ts, out)])
  a, b = (t.split(' #')[0] for t in pair.titles[:2])
  return Figure(rows, f'Interpolating behavior codes: {a} → {b}',
                f'μ of {pair.titles[0]} (t = 0) to μ of {pair.titles[1]} (t = 1), linear (top) '
                f'and spherical (bottom), each decoded from the start posture of '
                f'{start.titles[0]}.')


def neighbours(sampler: sampling.Sampler, windows: Windows, source: Clips, target: Clips,
               k: int, batch_size: int = 256, stride: int = 10, many: int = 2000,
               seed: int = 0) -> Figure:
  """A re-enactment (source's behavior from target's start posture) and its k nearest test
  windows in behavior space (μ) and in posture space (start pose).

  If the code holds the behavior and not the posture, the μ-neighbours share the source's
  class and the posture-neighbours share the target's posture but not the behavior. At most
  one window per sequence (windows start every `stride` raw frames). Reported: the fraction
  of each neighbour set with the source's class, for the figure's re-enactment and averaged
  over `many` re-enactments of random test windows from random other windows' start postures.
  """
  normalizer = sampler.normalizer
  reenacted = sampler.decode(codes(sampler, _first(source)),
                             target.poses[:1, 0])[0]
  query_norm = normalizer.normalize(reenacted)
  mu_q, _ = sampler.posterior(query_norm[None, :sampler.steps])
  mu_q = np.asarray(jax.device_get(mu_q))[0]
  # Candidates: a window every `stride` raw frames of every test sequence, their μ and start
  # pose (normalised), in fixed-size batches (one compilation). Neighbours are the best window
  # of distinct sequences: overlapping windows of one sequence would otherwise fill the row.
  cand = np.concatenate([windows.offsets[q] + np.arange(0, windows.counts[q], stride)
                         for q in range(len(windows.counts)) if windows.counts[q]])
  x = np.stack([windows.window(*windows.locate(int(i))) for i in cand])
  mus, starts = posterior_means(sampler, x, batch_size), x[:, 0]
  seq_of = np.array([windows.locate(int(i))[0] for i in cand])

  def nearest(dist):
    out, seen = [], set()
    for j in np.argsort(dist):
      if seq_of[j] not in seen:
        seen.add(seq_of[j])
        out.append(int(cand[j]))
      if len(out) == k:
        break
    return out

  by_mu = nearest(np.linalg.norm(mus - mu_q, axis=1))
  by_pose = nearest(np.linalg.norm(starts - query_norm[0], axis=1))
  seqs = windows.seqs

  def clip(i):
    seq, start = windows.locate(int(i))
    label = seqs.label_names[int(seqs.labels[seq])]
    return label, normalizer.denormalize(windows.window(seq, start))

  src_label = source.labels[0]
  rows = [[Panel(f'source: {source.titles[0]}', source.poses[0]),
           Panel(f'target start: {target.titles[0]}', target.poses[0, 0]),
           Panel('re-enactment (query)', reenacted)] + [None] * max(0, k - 3)]
  stats = {}
  for short, name, idx in (('μ', 'behavior space (μ)', by_mu),
                           ('pose', 'posture space (start pose)', by_pose)):
    found = [clip(i) for i in idx]
    rows.append([Panel(f'{short} neighbour {r + 1}: {lab}', p)
                 for r, (i, (lab, p)) in enumerate(zip(idx, found))])
    if src_label:
      stats[f'this re-enactment, {name}: share with the source class'] = float(
          np.mean([lab == src_label for lab, _ in found]))
    stats[f'this re-enactment, {name}: windows'] = [int(i) for i in idx]
  many_stats = _many_reenactments(sampler, mus, x, seqs.labels[seq_of], seq_of, k, many, seed,
                                  batch_size)
  stats.update(many_stats)
  n = many_stats['re-enactments']
  share_mu = many_stats['re-enactments, behavior space (μ): share with the source class']
  share_pose = many_stats['re-enactments, posture space (start pose): share with the source class']
  return Figure(rows, 'Nearest neighbours of a re-enactment: behavior vs posture space',
                f'Top: the source ({source.titles[0]}), the target start posture and the '
                f're-enactment. Middle: its {k} nearest test windows by behavior code μ. '
                f'Bottom: its {k} nearest test windows by start pose. If μ holds the behavior, '
                'the middle row repeats the source\'s behavior from other postures. Over '
                f'{n} re-enactments of random test windows from other windows\' start postures, '
                f'{100 * share_mu:.0f}% of the {k} μ-neighbours share the source\'s class, '
                f'against {100 * share_pose:.0f}% of the start-pose neighbours (chance '
                f'{100 * many_stats["chance (sum of squared class shares)"]:.0f}%).', stats)


def _many_reenactments(sampler, mus, x, labels, groups, k: int, n: int, seed: int,
                       batch_size: int) -> dict:
  """Class shares of the k nearest candidates of n re-enactments (random source window, random
  target window of another sequence), in μ and in start-pose space; neighbours from the
  source's and the target's sequences are skipped."""
  rng = np.random.default_rng(seed)
  n = min(n, len(x))
  src = rng.choice(len(x), n, replace=False)
  tgt = np.array([rng.choice(np.flatnonzero(groups != groups[i])) for i in src])
  out = np.asarray(sharding.batched(
      lambda z, st: sampling.decode(sampler.model_def, sampler.params, z, st, sampler.steps),
      (mus[src], x[tgt, 0]), batch_size))
  query = np.concatenate([x[tgt, :1], out], axis=1)
  mu_q = posterior_means(sampler, query, batch_size)
  flat = x[:, 0].reshape(len(x), -1)
  shares = {}
  for name, q, keys in (('behavior space (μ)', mu_q, mus),
                        ('posture space (start pose)', query[:, 0].reshape(n, -1), flat)):
    # A neighbour from the source's or the target's own sequence would be trivially alike.
    shares[name] = neighbour_metrics.share_with_class(
        q, labels[src], keys, labels, k, np.stack([groups[src], groups[tgt]], 1), groups)
  return {'re-enactments': int(n), 'k': int(k),
          **{f're-enactments, {name}: share with the source class': float(v)
             for name, v in shares.items()},
          'chance (sum of squared class shares)': neighbour_metrics.chance(labels)}


def _first(clips: Clips) -> Clips:
  return Clips(clips.poses[:1], clips.titles[:1], clips.labels[:1], clips.normalized[:1])
