"""bds_jax/xla_cpu.py: the XLA:CPU convolution flag is set only when it is safe to."""

import os
import subprocess
import sys

import jax
import jaxlib
import pytest

from bds_jax import xla_cpu

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('env', [
    {'XLA_FLAGS': '--xla_cpu_experimental_ynn_fusion_type=reduce'},  # the user chose
    {xla_cpu.OPT_OUT: '1'},
    {},  # this process has started its backend: too late for XLA_FLAGS
])
def test_left_alone(monkeypatch, env):
  jax.devices()
  monkeypatch.delenv('XLA_FLAGS', raising=False)
  for k, v in env.items():
    monkeypatch.setenv(k, v)
  assert not xla_cpu.prefer_eigen_convolutions()
  assert os.environ.get('XLA_FLAGS') == env.get('XLA_FLAGS')


@pytest.mark.skipif(jaxlib.__version__ not in xla_cpu.TESTED_JAXLIB,
                    reason='the flag is only set on the jaxlib versions it was measured on')
def test_set_before_the_backend_starts_and_convolutions_still_run():
  code = ('import os, jax, jax.numpy as jnp; from bds_jax import xla_cpu; '
          'assert xla_cpu.prefer_eigen_convolutions(); '
          'x = jnp.ones((1, 8, 8, 2)); w = jnp.ones((3, 3, 2, 4)); '
          'y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", '
          'dimension_numbers=("NHWC", "HWIO", "NHWC")); '
          'assert float(y[0, 4, 4, 0]) == 18.0; print(os.environ["XLA_FLAGS"])')
  env = {k: v for k, v in os.environ.items() if k not in ('XLA_FLAGS', xla_cpu.OPT_OUT)}
  env['XLA_FLAGS'] = '--xla_cpu_enable_fast_math=false'  # the user's flags are kept
  out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env, capture_output=True,
                       text=True, check=True).stdout
  assert out.split() == ['--xla_cpu_enable_fast_math=false', xla_cpu.FLAG]
