"""Data-parallel scaling of the behavior train step over 1, 2 and 4 (faked) devices.

  python benchmarks/scaling.py [--devices=1,2,4 --width=1024 --batch=64 --steps=5]

Each device count runs in its own process (the device count is fixed when JAX starts), with
XLA_FLAGS=--xla_force_host_platform_device_count=N on CPU, or the first N real devices when
--real_devices is set on a GPU/TPU host. The global batch is fixed, so ideal scaling divides the
step time by N. On a CPU, faked devices share the same cores: this checks the mechanics
(sharded batch, replicated parameters, all-reduced gradients) and the overhead, not speed-up.
"""

import json
import os
import subprocess
import sys

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_list('devices', ['1', '2', '4'], 'Device counts.')
flags.DEFINE_integer('width', 1024, 'LSTM width.')
flags.DEFINE_integer('batch', 64, 'Global batch.')
flags.DEFINE_integer('steps', 5, 'Timed steps.')
flags.DEFINE_bool('real_devices', False, 'Use the first N real devices instead of faking.')
FLAGS = flags.FLAGS

CHILD = r'''
import functools, json, sys, time
sys.path.insert(0, {root!r})
import jax, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from benchmarks import common
from bds_jax.train import behavior_step
from configs import behavior
n = {n}
devices = jax.devices()[:n]
assert len(devices) == n, jax.devices()
cfg = behavior.get_config()
cfg.model.width = {width}
setup, state = behavior_step.build(cfg, 1000)
mesh = Mesh(np.array(devices), ('data',))
repl, data = NamedSharding(mesh, P()), NamedSharding(mesh, P('data'))
step = jax.jit(functools.partial(behavior_step.train_step, setup), in_shardings=(repl, data),
               out_shardings=(repl, repl), donate_argnums=0)
state = jax.device_put(state, repl)
batch = jax.device_put({{'poses': np.random.default_rng(0).normal(
    size=({batch}, cfg.data.seq_len + 1, 51)).astype(np.float32)}}, data)
sec = common.train_step_seconds(step, state, batch, repeats={steps})
print(json.dumps({{'devices': n, 'sec': sec, 'kind': devices[0].device_kind}}))
'''


def main(argv):
  del argv
  rows = []
  for n in map(int, FLAGS.devices):
    env = dict(os.environ)
    if not FLAGS.real_devices:
      env.update(JAX_PLATFORMS='cpu', XLA_FLAGS=f'--xla_force_host_platform_device_count={n}')
    code = CHILD.format(root=ROOT, n=n, width=FLAGS.width, batch=FLAGS.batch, steps=FLAGS.steps)
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                         cwd=ROOT, check=False)
    if out.returncode:
      sys.exit(f'{n} devices failed:\n{out.stderr[-3000:]}')
    rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
  base = rows[0]['sec']
  print(f'behavior train step, global batch {FLAGS.batch}, width {FLAGS.width}, '
        f'devices: {rows[0]["kind"]}')
  print(f'{"devices":>8} {"s/step":>8} {"seq/s":>8} {"speed-up":>9}')
  for r in rows:
    print(f'{r["devices"]:>8} {r["sec"]:8.3f} {FLAGS.batch / r["sec"]:8.1f} '
          f'{base / r["sec"]:8.2f}x')


if __name__ == '__main__':
  app.run(main)
