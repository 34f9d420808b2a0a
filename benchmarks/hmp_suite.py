"""Wall time of evaluate.py's `hmp` suite at protocol size, phase by phase.

  python benchmarks/hmp_suite.py --workdir=runs/demo [--windows=5168 --k=50 --stride=8]

Runs the suite (bds_jax.evaluation.hmp) on a trained behavior run with the priors it has (N(0,
I) always, the flow in flow/, the diffusion prior in diffusion/), exactly as evaluate.py does,
and prints where the time goes: drawing codes, decoding futures, turning them into 50 Hz
root-relative clips, the metrics (APD, ADE, FDE, CMD; MMADE and MMFDE against the multimodal
ground truth) and the oracle row. Human3.6M's protocol has 5 168 test windows; on
synthetic_motion `--stride=8` gives at least as many, of which `--windows` are kept. Also prints
the decoder's FLOPs per future (XLA's cost analysis), the suite's decode FLOPs and what they
would take on a GPU at a stated sustained rate.
"""

import collections
import functools
import math
import os
import resource
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top,wrong-import-position

from benchmarks import common  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax import sampling  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax import skeleton  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.data import hmp as hmp_data  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.evaluation import common as evaluators  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.evaluation import context as context_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.metrics import hmp as hmp_metrics  # pylint: disable=g-import-not-at-top,wrong-import-position
from configs import evaluate as eval_configs  # pylint: disable=g-import-not-at-top,wrong-import-position

flags.DEFINE_string('workdir', None, 'A trained behavior run (with flow/ and diffusion/ if any).')
flags.DEFINE_integer('windows', 5168, 'Protocol windows kept (Human3.6M: 5 168).')
flags.DEFINE_integer('k', 50, 'Futures per window.')
flags.DEFINE_integer('stride', 8, 'Window stride (frames at 50 Hz; Human3.6M: 25 gives 5 168).')
flags.DEFINE_integer('batch_size', 0, 'Model batch (0: configs/evaluate.py\'s).')
flags.DEFINE_float('gpu_tflops', 20.0, 'Sustained float32 TFLOP/s assumed for the GPU estimate '
                   '(an H100 runs dense float32 matmuls near 50; small LSTM matmuls well below).')
flags.mark_flags_as_required(['workdir'])
FLAGS = flags.FLAGS

PHASES = collections.OrderedDict()


def timed(name, fn):
  """fn, with its wall time (outputs blocked on) added to PHASES[name]."""
  @functools.wraps(fn)
  def wrapper(*args, **kwargs):
    t = time.perf_counter()
    out = jax.block_until_ready(fn(*args, **kwargs))
    PHASES[name] = PHASES.get(name, 0.0) + time.perf_counter() - t
    return out
  return wrapper


def decode_flops(ctx, batch: int = 7) -> float:
  """XLA's FLOP count of decoding one future of seq_len frames (at an odd batch no timed call
  uses, so that the count comes from a fresh, unrolled trace)."""
  s = ctx.sampler
  z = jnp.zeros((batch, s.code_dim))
  start = jnp.zeros((batch, skeleton.POSE_DIM))
  return common.xla_flops(lambda z, st: sampling.decode(s.model_def, s.params, z, st,
                                                        ctx.seq_len), z, start) / batch


def main(argv):
  del argv
  cfg = eval_configs.get_config()
  if FLAGS.batch_size:
    cfg.batch_size = FLAGS.batch_size
  ctx = context_lib.load(FLAGS.workdir, cfg)
  per_future = decode_flops(ctx)
  # The phases: each wrapped where the suite calls it.
  ctx.prior_codes = timed('codes: N(0, I) and flow', ctx.prior_codes)
  if ctx.sampler.has_diffusion:
    ctx.sampler.diffusion_codes_normalized = timed('codes: diffusion (DDIM)',
                                                   ctx.sampler.diffusion_codes_normalized)
  ctx.decode = timed('decode futures', ctx.decode)
  ctx.posterior = timed('oracle: posterior', ctx.posterior)
  for module, name, phase in ((hmp_data, 'resample', 'resample to 50 Hz'),
                              (hmp_data, 'to_root_relative', 'root-relative'),
                              (hmp_metrics, 'window_metrics', 'metrics (APD ... MMFDE)'),
                              (hmp_metrics, 'multimodal_ground_truth', 'multimodal GT sets'),
                              (hmp_metrics, 'multimodal_apd', 'multimodal APD')):
    setattr(module, name, timed(phase, getattr(module, name)))
  suite = evaluators.get('hmp')
  kwargs = dict(cfg.hmp)
  kwargs.update(num_samples=FLAGS.k, stride=FLAGS.stride, max_windows=FLAGS.windows)
  cpu0 = resource.getrusage(resource.RUSAGE_SELF)
  t = time.perf_counter()
  results = evaluators.collect(suite, ctx, seed=cfg.seed, **kwargs)
  wall = time.perf_counter() - t
  cpu1 = resource.getrusage(resource.RUSAGE_SELF)
  cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
  priors = [p for p in ('gaussian', 'flow', 'diffusion') if p in results]
  n, k = results['num_windows'], results['num_samples']
  futures = n * k * len(priors)
  print(f'# hmp suite, {common.machine()}, {os.cpu_count()} CPUs')
  print(f'{FLAGS.workdir}: width {ctx.sampler.code_dim}, {n} windows x K = {k}, priors '
        f'{", ".join(priors)}, model batch {ctx.batch_size}, multimodal GT sets of '
        f'{results["mean_multimodal_set_size"]:.1f} futures on average\n')
  print('| phase | seconds | share |')
  print('|---|---|---|')
  for name, sec in PHASES.items():
    print(f'| {name} | {sec:.1f} | {100 * sec / wall:.0f}% |')
  other = wall - sum(PHASES.values())
  print(f'| everything else (Python, transfers, CMD, summaries) | {other:.1f} | '
        f'{100 * other / wall:.0f}% |')
  print(f'| **total** | **{wall:.1f}** ({wall / 60:.1f} min) | CPU use {cpu / wall:.2f} cores |')
  decode_total = per_future * (futures + n)  # + the oracle's one decode per window
  print(f'\nDecoding: {futures} futures at {futures / PHASES["decode futures"]:.0f} futures/s; '
        f'{per_future / 1e6:.1f} MFLOP per future (XLA cost analysis), '
        f'{decode_total / 1e12:.2f} TFLOP in all: at a sustained {FLAGS.gpu_tflops:g} TFLOP/s a '
        f'GPU would decode them in {decode_total / (FLAGS.gpu_tflops * 1e12):.1f} s.')
  for p in priors:
    r = results[p]
    print(f'{p}: APD {r["APD"]:.3f} ADE {r["ADE"]:.3f} FDE {r["FDE"]:.3f} '
          f'MMADE {r.get("MMADE", math.nan):.3f} MMFDE {r.get("MMFDE", math.nan):.3f}')


if __name__ == '__main__':
  app.run(main)
