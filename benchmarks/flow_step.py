"""Speed of the flow prior's jitted train step (stage 2).

  python benchmarks/flow_step.py [--preset=paper|upstream --code=1024 --batch=64 --steps=5]

One step = posterior samples of the frozen behavior encoder (width = code size) for a batch of
50-frame windows, then one Adam update of the flow on them. Prints seconds per step, codes per
second and achieved GFLOP/s (XLA cost analysis on an unrolled trace) next to a 4096x4096 fp32
matmul measured in the same run. The upstream preset (~630M flow parameters) needs ~10 GB.
"""

import functools
import os
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position

from benchmarks import common  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax import skeleton  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.train import behavior_step  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.train import flow_step  # pylint: disable=g-import-not-at-top,wrong-import-position
from configs import behavior  # pylint: disable=g-import-not-at-top,wrong-import-position
from configs import flow  # pylint: disable=g-import-not-at-top,wrong-import-position

flags.DEFINE_enum('preset', 'paper', ['paper', 'upstream'], 'Flow size preset.')
flags.DEFINE_integer('code', 1024, 'Behavior code size (= behavior LSTM width).')
flags.DEFINE_integer('batch', 64, 'Batch size.')
flags.DEFINE_integer('steps', 5, 'Timed steps.')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  bcfg = behavior.get_config()
  bcfg.model.width = FLAGS.code
  fcfg = flow.get_config('upstream' if FLAGS.preset == 'upstream' else None)
  print(f'machine: {common.machine()}')
  print(f'flow: {fcfg.flow.num_blocks} blocks, {fcfg.flow.num_layers} layers of width '
        f'{fcfg.flow.hidden_width}, code {FLAGS.code}, batch {FLAGS.batch}')
  ceiling = common.matmul_gflops()
  print(f'4096x4096 fp32 matmul: {ceiling:.0f} GFLOP/s')
  bsetup, bstate = behavior_step.build(bcfg, steps_per_epoch=1)
  setup, state = flow_step.build(fcfg, FLAGS.code, bsetup.model_def)
  n_params = sum(x.size for x in jax.tree.leaves(state['params']))
  vae = bstate['vae']
  batch = {'poses': jax.random.normal(jax.random.key(0),
                                      (FLAGS.batch, bcfg.data.seq_len + 1, skeleton.POSE_DIM))}
  fn = functools.partial(flow_step.train_step, setup)
  flops = common.xla_flops(fn, state, vae, batch)
  sec = common.train_step_seconds(jax.jit(fn, donate_argnums=0), state, vae, batch,
                                  repeats=FLAGS.steps)
  print(f'flow parameters: {n_params / 1e6:.1f} M')
  print(f'{sec:.3f} s/step, {FLAGS.batch / sec:.0f} codes/s, {flops / sec / 1e9:.0f} GFLOP/s '
        f'({100 * flops / sec / 1e9 / ceiling:.0f}% of the matmul; {flops / 1e9:.1f} GFLOP/step)')


if __name__ == '__main__':
  app.run(main)
