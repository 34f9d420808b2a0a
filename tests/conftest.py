"""Shared fixtures: repo on sys.path, a tiny synthetic dataset built once per session.

Most of the suite's time is XLA compiling the same small train steps again (each trainer run
builds fresh jitted closures, and CLI tests start new processes). A persistent compilation
cache in a fresh per-session folder, inherited by subprocesses through the environment, compiles
each distinct program once. It holds only this session's programs, so nothing stale is reused,
and a cached executable is the same program, so results are unchanged.
"""

import os
import shutil
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

_CACHE_DIR = None
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  _CACHE_DIR = tempfile.mkdtemp(prefix='bds_jax_test_xla_cache_')
  os.environ['JAX_COMPILATION_CACHE_DIR'] = _CACHE_DIR
  os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'
  os.environ['JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES'] = '0'


def pytest_sessionfinish(session, exitstatus):
  del session, exitstatus
  if _CACHE_DIR:
    shutil.rmtree(_CACHE_DIR, ignore_errors=True)


@pytest.fixture(scope='session')
def data_dir(tmp_path_factory):
  """TFDS data dir holding the `small` synthetic_motion dataset."""
  from bds_jax.data import sources  # pylint: disable=g-import-not-at-top
  d = str(tmp_path_factory.mktemp('tfds'))
  builder = sources.get_builder('synthetic_motion', d, 'small')
  builder.download_and_prepare()
  return d


@pytest.fixture
def smoke_config(data_dir):
  from configs import behavior  # pylint: disable=g-import-not-at-top
  c = behavior.get_config('smoke')
  c.data.data_dir = data_dir
  c.data.prepare = 'never'
  return c


@pytest.fixture(scope='session')
def behavior_workdir(data_dir, tmp_path_factory):
  """A trained (briefly) smoke behavior model, shared by the flow and sampling tests."""
  from configs import behavior  # pylint: disable=g-import-not-at-top
  from bds_jax.train import behavior as trainer  # pylint: disable=g-import-not-at-top
  c = behavior.get_config('smoke')
  c.data.data_dir = data_dir
  c.data.prepare = 'never'
  c.num_steps = 20
  c.final_gif = False
  workdir = str(tmp_path_factory.mktemp('behavior_run'))
  trainer.train_and_evaluate(c, workdir)
  return workdir
