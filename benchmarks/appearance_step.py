"""Speed of the appearance model's jitted train step at the paper's shapes, beside an
upstream-equivalent PyTorch step in the same run.

  python benchmarks/appearance_step.py [--size=256 --batch=12 --steps=5
                                        --dtypes=float32,bfloat16 --torch]
  python benchmarks/appearance_step.py --size=64 --steps=2     # a quick check (minutes on a CPU)

Paper shapes (reference spec §4.4, `configs/appearance.py:h36m`): batch 12, 256x256 images,
the image itself as appearance input, bottleneck factor 2 (7 scales, latents 4x4 and 8x8),
the VGG19 perceptual loss (random weights: the cost is that of the real ones), 5 regressor
steps per update. Prints, per compute dtype: seconds per step, images per second and
achieved GFLOP/s (XLA's cost analysis of the same step, scans unrolled), beside the
same-run rates of a 4096^2 matmul and of a 3x3, 128-channel convolution at 64x64 (batch 12)
in that dtype; then the PyTorch step (benchmarks/upstream_torch_appearance.py, written from
the spec) in float32 and with bf16 autocast, and each row's speed relative to PyTorch float32.
"""

import functools
import os
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position

from benchmarks import common  # pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import upstream_torch_appearance as torch_step  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.models import vgg  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.train import appearance_step  # pylint: disable=g-import-not-at-top,wrong-import-position

flags.DEFINE_integer('size', 256, 'Image size (paper, H3.6M: 256; a multiple of 16).')
flags.DEFINE_integer('batch', 12, 'Batch size (paper: 12).')
flags.DEFINE_integer('steps', 5, 'Timed steps per row (after one untimed warm-up step).')
flags.DEFINE_list('dtypes', ['float32', 'bfloat16'], 'Compute dtypes (float32, bfloat16).')
flags.DEFINE_bool('count_flops', True, 'Count FLOPs with XLA on an unrolled trace.')
flags.DEFINE_bool('torch', True, 'Also time the upstream-equivalent PyTorch step (if installed).')
flags.DEFINE_bool('eigen_convolutions', True, 'As train.py does for appearance runs: XLA:CPU '
                  'convolutions on its own kernels, not YNNPACK (bds_jax/xla_cpu.py); false '
                  'measures jaxlib\'s defaults.')
FLAGS = flags.FLAGS


def jax_row(dtype: str, vgg_weights, batch: dict):
  cfg = common.appearance_config(FLAGS.size, FLAGS.batch, dtype)
  setup, state = appearance_step.build(cfg, num_frames=100_000)
  step_fn = functools.partial(appearance_step.train_step, setup)
  batch = jax.device_put(batch)
  flops = common.xla_flops(step_fn, state, batch, vgg_weights) if FLAGS.count_flops else None
  sec = common.train_step_seconds(jax.jit(step_fn, donate_argnums=0), state, batch,
                                  vgg_weights, repeats=FLAGS.steps)
  return sec, flops


def main(argv):
  del argv
  common.appearance_preamble(FLAGS.size, FLAGS.eigen_convolutions)
  print(f'shapes: batch {FLAGS.batch}, {FLAGS.size}x{FLAGS.size}, H3.6M settings (image '
        'appearance input, bottleneck factor 2, VGG19 perceptual loss, 5 regressor steps)')
  rates = {d: (common.matmul_gflops(dtype=d), common.conv_gflops(FLAGS.batch, 64, 128, d))
           for d in FLAGS.dtypes}
  for d, (mm, cv) in rates.items():
    print(f'same-run ceilings, {d}: 4096^2 matmul {mm:.0f} GFLOP/s, 3x3 conv 128->128 at '
          f'64x64 {cv:.0f} GFLOP/s')
  vgg_weights = jax.device_put(vgg.convert_arrays(vgg.random_arrays(0)))
  batch = common.appearance_batch(FLAGS.batch, FLAGS.size)
  rows = []
  for dtype in FLAGS.dtypes:
    sec, flops = jax_row(dtype, vgg_weights, batch)
    rows.append((f'bds_jax {dtype}', sec, flops, rates[dtype]))
    print(f'  timed {rows[-1][0]}: {sec:.3f} s/step')
  if FLAGS.torch and torch_step.available():
    import torch  # pylint: disable=g-import-not-at-top
    print(f'PyTorch {torch.__version__}: {common.torch_kernels()}')
    for bf16 in (False, True):
      sec = torch_step.time_step(FLAGS.size, FLAGS.batch, steps=FLAGS.steps, bf16=bf16)
      rows.append((f'PyTorch upstream-eq. {"bf16 autocast" if bf16 else "float32"}', sec,
                   None, None))
      print(f'  timed {rows[-1][0]}: {sec:.3f} s/step')
  elif FLAGS.torch:
    print('PyTorch not installed: pip install -r benchmarks/requirements.txt for the '
          'side-by-side upstream comparison.')
  torch_fp32 = next((r[1] for r in rows if r[0].endswith('float32') and 'PyTorch' in r[0]),
                    None)
  print()
  print(f'{"step":<36} {"s/step":>8} {"img/s":>7} {"GFLOP/s":>8} {"% matmul":>9} '
        f'{"% conv":>7} {"GFLOP":>8} {"vs torch fp32":>14}')
  for name, sec, flops, rate in rows:
    gfs = flops / sec / 1e9 if flops else None
    cells = [f'{gfs:8.1f}' if gfs else f'{"–":>8}',
             f'{100 * gfs / rate[0]:8.0f}%' if gfs else f'{"–":>9}',
             f'{100 * gfs / rate[1]:6.0f}%' if gfs else f'{"–":>7}',
             f'{flops / 1e9:8.1f}' if flops else f'{"–":>8}',
             f'{torch_fp32 / sec:13.2f}x' if torch_fp32 else f'{"–":>14}']
    print(f'{name:<36} {sec:8.3f} {FLAGS.batch / sec:7.1f} ' + ' '.join(cells))
  print('(GFLOP: XLA cost analysis of one bds_jax step; % matmul / % conv: of the same-run '
        'rates in the same dtype. The PyTorch step runs upstream\'s extra work: 5 no-grad '
        'encoder passes for the regressor and three unused encoder modules.)')


if __name__ == '__main__':
  app.run(main)
