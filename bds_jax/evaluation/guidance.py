"""Suite 'guidance' (new): does asking the diffusion prior for a class give that class?

The prior asked is the action-conditioned one: <workdir>/diffusion_labels (trained with
model.use_labels=True), or <workdir>/diffusion when that one was trained with labels (runs made
while that was the default). `prior` names which; the `hmp` suite's row is the
observation-only prior of <workdir>/diffusion.

For `num_windows` HMP test windows (the protocol's 25 observed frames, `bds_jax.data.hmp`),
each window is asked for one class drawn uniformly from the dataset's classes (seeded), and
`samples_per_window` codes are drawn: unguided (the null label), and with the class at each
classifier-free guidance scale in `scales`. The codes are decoded from the last observed pose
for seq_len model frames. A held-out sequence classifier (the "gt" LSTM classifier of
`metrics.probes`, trained on train-split windows, scored on test-split windows too) then says
how often it recognises the requested class in the samples. The unguided row is the baseline:
what the observation alone makes of the requested class (about chance, plus how often the
requested class happens to be the window's own). Also reported: how often unguided samples show
the window's own class, i.e. how much of the class the observation already decides.
"""

import logging

import jax
import numpy as np

from bds_jax import runs
from bds_jax.data import hmp as hmp_data
from bds_jax.data.pipeline import fixed_windows
from bds_jax.evaluation.context import Context
from bds_jax.metrics import probes


log = logging.getLogger(__name__)
SKIPPED = ('no action-conditioned diffusion prior (train one with configs/diffusion.py '
           '--config.model.use_labels=True into <workdir>/diffusion_labels)')


def labelled_sampler(ctx: Context):
  """(Sampler with the action-conditioned diffusion prior, its run directory), or None."""
  if ctx.sampler.has_diffusion and ctx.sampler.num_labels:
    return ctx.sampler, ctx.diffusion.run.path if ctx.diffusion is not None else ''
  if ctx.behavior is None:  # a trainer's context: only its own models
    return None
  run = runs.Run(ctx.workdir).diffusion_run(labelled=True)
  if run is None:
    return None
  diffusion = run.load_diffusion(behavior=ctx.behavior)
  log.info('Action-conditioned diffusion prior from %s (step %d).', run.path, diffusion.step)
  sampler = diffusion.sampler()
  if not sampler.num_labels:
    raise ValueError(f'{run.path} holds a diffusion prior trained without labels; the guidance '
                     'suite needs one trained with --config.model.use_labels=True.')
  return sampler, run.path


def run(ctx: Context, *, seed: int, num_windows: int, samples_per_window: int, scales,
        classifier_steps: int, train_windows: int):
  found = labelled_sampler(ctx)
  if found is None:
    yield 'skipped', SKIPPED
    return
  sampler, path = found
  lag, t = ctx.frame_lag, ctx.seq_len
  windows = hmp_data.protocol_windows(ctx.test_seqs, sampler.observed_frames, lag * t,
                                      hmp_data.H36M_STRIDE)
  rng = np.random.default_rng(seed + 21)
  keep = np.sort(rng.choice(len(windows), size=min(num_windows, len(windows)), replace=False))
  windows = windows.subset(keep)
  n, k, classes = len(windows), int(samples_per_window), sampler.num_labels
  requested = rng.integers(classes, size=n).astype(np.int32)
  obs = ctx.normalizer.normalize(windows.observed_abs)
  starts = np.repeat(ctx.normalizer.normalize(windows.last_observed_abs), k, axis=0)
  key = jax.random.key(seed + 22)

  def samples(label, scale, index):
    codes = []
    chunk = max(1, 4 * ctx.batch_size // k)
    for i in range(0, n, chunk):
      lab = None if label is None else label[i:i + chunk]
      codes.append(np.asarray(jax.device_get(sampler.diffusion_codes_normalized(
          obs[i:i + chunk], k, jax.random.fold_in(jax.random.fold_in(key, index), i), lab,
          scale))).reshape(-1, sampler.code_dim))
    return ctx.decode(np.concatenate(codes), starts, t)  # (n k, T, D) normalised

  want = np.repeat(requested, k)
  unguided = samples(None, 1.0, 0)
  extra = {'unguided': (unguided, want), 'unguided_own': (unguided, np.repeat(windows.label, k))}
  for j, scale in enumerate(scales):
    extra[f'guidance_{scale:g}'] = (samples(requested, float(scale), j + 1), want)
  train = fixed_windows(ctx.train, train_windows, seed + 23, paired=False)
  real = fixed_windows(ctx.test, max(256, n), seed + 24, paired=False)
  acc = probes.sequence_classifier_accuracy(
      train['poses'][:, :-1], train['label'], real['poses'][:, :-1], real['label'], classes,
      seed=seed, steps=classifier_steps, extra_test_sets=extra)
  yield 'prior', 'action-conditioned diffusion prior' + (f' ({path})' if path else '')
  yield 'num_windows', int(n)
  yield 'samples_per_window', k
  yield 'num_classes', int(classes)
  yield 'classifier_test_accuracy', acc['test_accuracy']
  yield 'recognised_requested', {name: acc[f'{name}_accuracy'] for name in extra
                                 if name != 'unguided_own'}
  yield 'unguided_recognised_own_class', acc['unguided_own_accuracy']
  yield 'requested_is_own_class', float(np.mean(requested == windows.label))
