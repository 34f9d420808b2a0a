"""Data parallelism: 4 faked devices equal 1 device; checkpoints move across device counts;
a two-process jax.distributed run on localhost trains and checkpoints.

The device count is fixed when a JAX backend starts, so multi-device runs happen in
subprocesses with XLA_FLAGS=--xla_force_host_platform_device_count=N.
"""

import os
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np

from bds_jax import runs
from bds_jax.train import behavior as trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(devices):
  return dict(os.environ, JAX_PLATFORMS='cpu',
              XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}')


def _python(code, devices):
  out = subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=ROOT,
                       env=_env(devices), capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-4000:]
  return out.stdout


def test_four_device_step_equals_one_device_step():
  out = _python(f"""
    import functools, sys
    sys.path.insert(0, {ROOT!r})
    import jax, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from bds_jax.train import behavior_step
    from configs import behavior
    assert jax.device_count() == 4
    setup, state = behavior_step.build(behavior.get_config('smoke'), 100)
    poses = np.random.default_rng(0).normal(size=(8, 11, 51)).astype(np.float32)

    def run(devices):
      mesh = Mesh(np.array(devices), ('data',))
      repl, data = NamedSharding(mesh, P()), NamedSharding(mesh, P('data'))
      step = jax.jit(functools.partial(behavior_step.train_step, setup),
                     in_shardings=(repl, data), out_shardings=(repl, repl))
      s, b = jax.device_put(state, repl), jax.device_put({{'poses': poses}}, data)
      assert len(b['poses'].addressable_shards) == len(devices)
      for _ in range(3):
        s, m = step(s, b)
      assert step._cache_size() == 1  # no retracing
      assert all(x.sharding.is_fully_replicated for x in jax.tree.leaves(s))
      return jax.device_get(s), jax.device_get(m)

    (s4, m4), (s1, m1) = run(jax.devices()), run(jax.devices()[:1])
    # Adam divides each gradient element by its own magnitude, so an element whose summed
    # gradient is near zero turns the all-reduce's different summation order into a visible
    # difference of up to the step size. Tolerance: 1% of lr per step, on top of rtol.
    lr = behavior.get_config('smoke').optim.lr
    for a, b in zip(jax.tree.leaves(s4), jax.tree.leaves(s1)):
      np.testing.assert_allclose(a, b, rtol=2e-4, atol=max(2e-5, 0.03 * lr))
    for k in m1:
      np.testing.assert_allclose(m4[k], m1[k], rtol=2e-4, atol=1e-5)
    print('ok', float(m4['loss']))
  """, devices=4)
  assert out.startswith('ok')


def _train_cli(workdir, data_dir, steps, devices=4, extra=()):
  return subprocess.run(
      [sys.executable, 'train.py', '--config=configs/behavior.py:smoke', f'--workdir={workdir}',
       f'--config.data.data_dir={data_dir}', '--config.data.prepare=never',
       f'--config.num_steps={steps}', '--config.final_gif=false', *extra],
      cwd=ROOT, env=_env(devices), capture_output=True, text=True, timeout=600)


def test_checkpoint_from_four_devices_resumes_on_one(smoke_config, data_dir, tmp_path):
  out = _train_cli(tmp_path / 'moved', data_dir, steps=6)
  assert out.returncode == 0, out.stderr[-3000:]
  c = smoke_config
  c.num_steps = 10
  c.final_gif = False
  resumed = trainer.train_and_evaluate(c, str(tmp_path / 'moved'))  # 1 device here
  assert resumed.step == 10
  direct = trainer.train_and_evaluate(c, str(tmp_path / 'direct'))
  for a, b in zip(jax.tree.leaves(jax.device_get(resumed.state)),
                  jax.tree.leaves(jax.device_get(direct.state))):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def _free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def test_two_process_distributed_run_trains_and_checkpoints(data_dir, tmp_path):
  port = _free_port()
  procs = [subprocess.Popen(
      [sys.executable, 'train.py', '--config=configs/behavior.py:smoke',
       f'--workdir={tmp_path}', f'--config.data.data_dir={data_dir}',
       '--config.data.prepare=never', '--config.num_steps=10', '--config.final_gif=false',
       f'--coordinator_address=localhost:{port}', '--num_processes=2', f'--process_id={i}'],
      cwd=ROOT, env=_env(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
      for i in range(2)]
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  ckpt = tmp_path / 'checkpoints' / '10'
  assert sorted(os.listdir(ckpt / 'data_iter')) == [
      'commit_success.txt', 'process_0-of-2.json', 'process_1-of-2.json']
  run = runs.Run(str(tmp_path)).load_behavior()  # the 4-device checkpoint, read on 1 device
  assert run.step == 10
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(run.params))
