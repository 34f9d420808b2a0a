"""End-to-end training: loss goes down, outputs exist, exact resume, NaN stop, clear errors."""

import os
import signal
import subprocess
import sys
import time

import imageio.v3 as iio
import jax
import numpy as np
import pytest

from bds_jax.train import behavior as trainer
import training_hooks  # pylint: disable=g-bad-import-order

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_smoke_run_lowers_loss_and_writes_outputs(smoke_config, tmp_path):
  c = smoke_config
  c.num_steps = 60
  c.log_every_steps = 5
  result = trainer.train_and_evaluate(c, str(tmp_path))
  assert result.step == 60 and not result.interrupted
  recon = [v for _, v in training_hooks.logged(tmp_path, 'train/recon')]
  assert np.mean(recon[-3:]) < 0.5 * np.mean(recon[:2]), recon
  assert set(os.listdir(tmp_path / 'checkpoints')) >= {'60'}
  for name in ('normalization.json', 'config.json', 'final_metrics.json'):
    assert (tmp_path / name).exists()
  assert any(f.startswith('events.out.tfevents') for f in os.listdir(tmp_path / 'tensorboard'))
  gif = iio.imread(tmp_path / 'reenactment' / 'step_0000060.gif')
  assert gif.ndim == 4 and gif.shape[0] == c.data.seq_len + 1 and gif.shape[-1] in (3, 4)
  assert 'eval/recon' in result.eval_metrics


def test_sigterm_then_resume_equals_uninterrupted_run(smoke_config, tmp_path):
  c = smoke_config
  c.num_steps = 12
  c.log_every_steps = 2
  c.eval_every_steps = 100
  c.checkpoint_every_steps = 100
  c.final_gif = False
  full = trainer.train_and_evaluate(c, str(tmp_path / 'full'))

  part = trainer.train_and_evaluate(c, str(tmp_path / 'split'),
                                    hooks=[training_hooks.signal_at(5)])
  assert part.interrupted and part.step == 5
  assert os.listdir(tmp_path / 'split' / 'checkpoints') == ['5']
  resumed = trainer.train_and_evaluate(c, str(tmp_path / 'split'))
  assert resumed.step == 12 and not resumed.interrupted

  a, b = jax.device_get(full.state), jax.device_get(resumed.state)
  for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y, err_msg=jax.tree_util.keystr(path))
  # The logged curves match too, except the step-6 line, whose averaging interval (steps 5-6)
  # straddles the interruption; no line is duplicated.
  for key in ('train/loss', 'train/gamma', 'train/regressor_loss'):
    f = training_hooks.logged(tmp_path / 'full', key)
    s = training_hooks.logged(tmp_path / 'split', key)
    assert [st for st, _ in f] == [st for st, _ in s] == [2, 4, 6, 8, 10, 12]
    assert [r for r in f if r[0] != 6] == [r for r in s if r[0] != 6]


def test_non_finite_loss_stops_with_step_and_keeps_good_checkpoint(smoke_config, tmp_path):
  c = smoke_config
  c.optim.lr = 1e30
  c.checkpoint_every_steps = 1
  c.log_every_steps = 1
  with pytest.raises(trainer.NonFiniteLossError, match=r'NaN or inf at step \d+') as err:
    trainer.train_and_evaluate(c, str(tmp_path))
  bad = int(str(err.value).split('at step ')[1].split(';')[0])
  steps = sorted(int(s) for s in os.listdir(tmp_path / 'checkpoints'))
  assert steps and max(steps) < bad
  assert f'step {max(steps)}' in str(err.value)


def test_missing_dataset_is_a_clear_error(smoke_config, tmp_path):
  c = smoke_config
  c.data.data_dir = str(tmp_path / 'nowhere')
  with pytest.raises(FileNotFoundError, match=r'not built in data_dir .*nowhere.*prepare=auto'):
    trainer.train_and_evaluate(c, str(tmp_path / 'run'))
  c.data.name = 'human36m'
  c.data.builder_config = ''
  c.data.prepare = 'auto'
  c.data.manual_dir = str(tmp_path / 'no_h36m_here')
  with pytest.raises(FileNotFoundError, match='no_h36m_here.*does not exist'):
    trainer.train_and_evaluate(c, str(tmp_path / 'run'))


def _run_cli(*args):
  return subprocess.run([sys.executable, 'train.py', *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS='cpu'))


def test_cli_overrides_and_unknown_preset(data_dir, tmp_path):
  bad = _run_cli('--config=configs/behavior.py:tiny', f'--workdir={tmp_path}/x')
  assert bad.returncode != 0 and "Unknown preset 'tiny'" in bad.stderr
  typo = _run_cli('--config=configs/behavior.py:smoke', f'--workdir={tmp_path}/x',
                  '--config.optim.learning_rate=1')
  assert typo.returncode != 0 and 'learning_rate' in typo.stderr
  ok = _run_cli('--config=configs/behavior.py:smoke', f'--workdir={tmp_path}/run',
                f'--config.data.data_dir={data_dir}', '--config.num_steps=4',
                '--config.model.variant=cvae', '--config.final_gif=false')
  assert ok.returncode == 0, ok.stderr[-3000:]
  cfg = (tmp_path / 'run' / 'config.json').read_text()
  assert '"num_steps": 4' in cfg and '"variant": "cvae"' in cfg
  assert os.listdir(tmp_path / 'run' / 'checkpoints') == ['4']

  # Stopped by SIGTERM (preemption): a checkpoint, and exit 75 (stopped, resumable), not 0,
  # so `train.py ... && evaluate.py ...` does not evaluate a half-trained model.
  metrics = tmp_path / 'run' / 'metrics.jsonl'
  logged = len(metrics.read_text().splitlines())
  proc = subprocess.Popen(
      [sys.executable, 'train.py', '--config=configs/behavior.py:smoke',
       f'--workdir={tmp_path}/run', f'--config.data.data_dir={data_dir}',
       '--config.num_steps=100000', '--config.log_every_steps=1', '--config.model.variant=cvae',
       '--config.final_gif=false'], cwd=ROOT, stderr=subprocess.PIPE, text=True,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  deadline = time.time() + 240
  while len(metrics.read_text().splitlines()) < logged + 2 and proc.poll() is None:
    assert time.time() < deadline, 'the resumed run logged nothing'
    time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 75, err[-3000:]
  assert 'Stopped at step' in err and 'Traceback' not in err
  steps = [int(s) for s in os.listdir(tmp_path / 'run' / 'checkpoints')]
  assert max(steps) > 4
