"""Speed of the behavior model's jitted train step at the paper's shapes.

  python benchmarks/behavior_step.py [--width=1024 --batch=64 --steps=10 --impls=fused,reference
                                      --dtypes=float32,bfloat16]

Prints, for each LSTM implementation and compute dtype side by side: seconds per step, sequences per second and
achieved GFLOP/s, next to the GFLOP/s of a 4096x4096 fp32 matmul measured in the same run
(the practical ceiling). FLOPs are XLA's cost analysis of the same step traced with every scan
unrolled (XLA counts a loop body once otherwise); the analytic matmul count is shown too.
One step = 5 regressor updates + one cVAE update + dual ascent, as in training.
"""

import functools
import os
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position

from benchmarks import common  # pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import upstream_torch_step  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax import skeleton  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.train import behavior_step  # pylint: disable=g-import-not-at-top,wrong-import-position
from configs import behavior  # pylint: disable=g-import-not-at-top,wrong-import-position

flags.DEFINE_integer('width', 1024, 'LSTM width = latent size (paper: 1024).')
flags.DEFINE_integer('batch', 64, 'Batch size (paper: 64).')
flags.DEFINE_integer('frames', 50, 'Sequence length (paper: 50).')
flags.DEFINE_integer('steps', 10, 'Timed steps per implementation.')
flags.DEFINE_list('impls', ['fused', 'reference'], 'LSTM implementations to compare.')
flags.DEFINE_list('dtypes', ['float32'], 'Compute dtypes to compare (float32, bfloat16).')
flags.DEFINE_bool('count_flops', True, 'Count FLOPs with XLA on an unrolled trace (slow compile).')
flags.DEFINE_bool('torch', True, 'Also time the upstream-equivalent PyTorch step (if installed).')
FLAGS = flags.FLAGS


def analytic_matmul_flops(b, t, d, h, regressor_steps, reg_widths, time_width):
  """Matmul FLOPs of one train step (forward + backward), no elementwise work."""
  lstm_fwd = 2 * b * t * 4 * h * (d + h)
  encoder = lstm_fwd * 2 + 2 * b * t * 4 * h * h      # fwd, weight grad, recurrent grad
  decoder = lstm_fwd * 3 + 3 * 2 * b * t * h * d      # + input grad (autoregressive); out layer
  heads = 3 * 2 * 2 * b * h * h
  dims = (h, *reg_widths)
  reg_fwd = 2 * b * (sum(x * y for x, y in zip(dims[:-1], dims[1:])) + t * time_width
                     + (dims[-1] + time_width) * d)
  regressor = regressor_steps * 3 * reg_fwd + 3 * reg_fwd  # inner steps + adversarial term
  return encoder + decoder + heads + regressor


def main(argv):
  del argv
  cfg = behavior.get_config()
  cfg.model.width = FLAGS.width
  cfg.data.seq_len = FLAGS.frames
  print(f'machine: {common.machine()}')
  print(f'shapes: batch {FLAGS.batch}, {FLAGS.frames} frames, {skeleton.POSE_DIM} dims, '
        f'width {FLAGS.width}, {cfg.loss.regressor_steps} regressor steps per step')
  ceilings = {d: common.matmul_gflops(dtype=d) for d in FLAGS.dtypes}
  for d, g in ceilings.items():
    print(f'4096x4096 {d} matmul: {g:.0f} GFLOP/s')
  batch = {'poses': jax.random.normal(jax.random.key(0),
                                      (FLAGS.batch, FLAGS.frames + 1, skeleton.POSE_DIM))}
  analytic = analytic_matmul_flops(FLAGS.batch, FLAGS.frames, skeleton.POSE_DIM, FLAGS.width,
                                   cfg.loss.regressor_steps, cfg.model.regressor_widths,
                                   cfg.model.regressor_time_width)
  rows = []
  for impl, dtype in [(i, d) for i in FLAGS.impls for d in FLAGS.dtypes]:
    cfg.model.lstm_impl = impl
    cfg.model.compute_dtype = dtype
    setup, state = behavior_step.build(cfg, steps_per_epoch=1000)
    step_fn = functools.partial(behavior_step.train_step, setup)
    flops = common.xla_flops(step_fn, state, batch) if FLAGS.count_flops else analytic
    sec = common.train_step_seconds(jax.jit(step_fn, donate_argnums=0), state, batch,
                                    repeats=FLAGS.steps)
    rows.append((f'{impl}/{dtype}', sec, FLAGS.batch / sec, flops / sec / 1e9, flops,
                 ceilings[dtype]))
  print(f'analytic matmul FLOPs per step: {analytic / 1e9:.1f} G')
  print(f'{"impl/dtype":<18} {"s/step":>8} {"seq/s":>8} {"GFLOP/s":>8} {"% matmul":>9} '
        f'{"XLA GFLOP":>10} {"vs first":>9}')
  for impl, sec, sps, gfs, flops, ceiling in rows:
    print(f'{impl:<18} {sec:8.3f} {sps:8.1f} {gfs:8.0f} {100 * gfs / ceiling:8.0f}% '
          f'{flops / 1e9:10.1f} {rows[0][1] / sec:8.2f}x')
  print('(% matmul: of the same-run 4096^2 matmul in the same dtype)')
  if FLAGS.torch and upstream_torch_step.available():
    import torch  # pylint: disable=g-import-not-at-top
    sec = upstream_torch_step.time_step(FLAGS.width, FLAGS.batch, FLAGS.frames,
                                        skeleton.POSE_DIM, steps=FLAGS.steps)
    print(f'upstream-equivalent PyTorch {torch.__version__} step ({torch.get_num_threads()} '
          f'threads): {sec:.3f} s/step, {FLAGS.batch / sec:.1f} seq/s; '
          f'{rows[0][0]} is {sec / rows[0][1]:.2f}x faster')
  elif FLAGS.torch:
    print('PyTorch not installed: pip install -r benchmarks/requirements.txt for the '
          'side-by-side upstream comparison.')


if __name__ == '__main__':
  app.run(main)
