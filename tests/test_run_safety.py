"""Run directories that survive misuse: the lock, resume checks, checkpoint fallback, crash-safe
logs, config validation, Ctrl-C, a full disk, and one-line errors from the command line."""

import errno
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from bds_jax import checkpointing
from bds_jax import errors
from bds_jax import metric_writer
from bds_jax import run_lock
from bds_jax import runs
from bds_jax.train import behavior as trainer
import training_hooks  # pylint: disable=g-bad-import-order

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _quick(c, steps=20):
  c.num_steps = steps
  c.final_gif = False
  c.eval_every_steps = 0
  return c


def _truncate_arrays(step_dir):
  """Truncates every array data file of a checkpoint, as a crash or a full disk might."""
  n = 0
  for d, _, files in os.walk(os.path.join(step_dir, 'state')):
    if os.path.basename(d) == 'd':
      for f in files:
        with open(os.path.join(d, f), 'r+b') as fh:
          fh.truncate(3)
        n += 1
  assert n


def test_corrupt_latest_checkpoint_falls_back_and_is_quarantined(smoke_config, tmp_path, caplog):
  c = _quick(smoke_config)
  wd = str(tmp_path / 'run')
  trainer.train_and_evaluate(c, wd)
  _truncate_arrays(os.path.join(wd, 'checkpoints', '20'))

  # A reader falls back too, says which step it used, and moves nothing.
  with caplog.at_level(logging.INFO):
    assert runs.Run(wd).load_behavior().step == 10
  assert 'Loaded step 10' in caplog.text and 'checkpoints/20 cannot be restored' in caplog.text
  assert sorted(os.listdir(os.path.join(wd, 'checkpoints'))) == ['10', '20']

  c.num_steps = 30
  result = trainer.train_and_evaluate(c, wd)
  assert result.step == 30
  assert os.listdir(os.path.join(wd, 'checkpoints_quarantined')) == ['20']
  rows = metric_writer.read_jsonl(os.path.join(wd, 'metrics.jsonl'))
  assert [r['step'] for r in rows if 'train/loss' in r] == [10, 20, 30]
  # The num_steps change is recorded at the step the run resumed from, not the lost one.
  history = metric_writer.read_jsonl(os.path.join(wd, 'config_history.jsonl'))
  assert [(h['step'], h['changes']['num_steps']) for h in history] == [(10, [20, 30])]


def test_missing_metadata_is_called_corrupt_not_another_config(smoke_config, tmp_path):
  c = _quick(smoke_config, 10)
  wd = str(tmp_path / 'run')
  trainer.train_and_evaluate(c, wd)
  os.remove(os.path.join(wd, 'checkpoints', '10', 'state', '_METADATA'))
  c.num_steps = 20
  with pytest.raises(checkpointing.CheckpointError, match='None of the checkpoints') as err:
    trainer.train_and_evaluate(c, wd)
  assert 'model sizes' not in str(err.value) and 'another config' not in str(err.value)
  assert os.listdir(os.path.join(wd, 'checkpoints')) == ['10']  # nothing moved


def test_checkpoint_of_another_config_is_named_as_such(smoke_config, tmp_path):
  c = _quick(smoke_config, 10)
  wd = str(tmp_path / 'run')
  trainer.train_and_evaluate(c, wd)
  c.model.width = 16  # bypassing config.json's check, as an edited config.json would
  ckpt = checkpointing.Checkpointer(os.path.join(wd, 'checkpoints'), create=False)
  from bds_jax.train import behavior_step, loop  # pylint: disable=g-import-not-at-top
  _, state = behavior_step.build(c, 10, runs.Run(wd).normalizer())
  with pytest.raises(checkpointing.CheckpointError, match=r'another config, not corrupt'
                     r'(.|\n)*model.width: the run has 32'):
    loop.restore_latest(ckpt, state, None, c)
  assert os.listdir(os.path.join(wd, 'checkpoints')) == ['10']


_HOLDER = textwrap.dedent('''
    import os, sys, time
    sys.path.insert(0, {root!r})
    from bds_jax import run_lock
    run_lock.acquire({wd!r})
    print('locked', flush=True)
    if {die!r}:
      os._exit(0)  # dies holding it: no clean release
    time.sleep(120)
''')


def _hold_lock(wd, die=False):
  os.makedirs(wd, exist_ok=True)
  p = subprocess.Popen([sys.executable, '-c', _HOLDER.format(root=ROOT, wd=wd, die=die)],
                       stdout=subprocess.PIPE, text=True)
  assert p.stdout.readline().strip() == 'locked'
  return p


def test_second_trainer_on_a_workdir_is_refused(smoke_config, tmp_path):
  wd = str(tmp_path / 'run')
  holder = _hold_lock(wd)
  try:
    with pytest.raises(run_lock.LockedError, match=f'in use by process {holder.pid} on host'):
      trainer.train_and_evaluate(_quick(smoke_config), wd)
    assert sorted(os.listdir(wd)) == ['train.lock']  # nothing written, nothing truncated
    with pytest.raises(run_lock.LockedError, match='is being written by'):
      run_lock.check_no_writer(wd)
    cli = _run_cli('train.py', '--config=configs/behavior.py:smoke', f'--workdir={wd}',
                   f'--config.data.data_dir={smoke_config.data.data_dir}')
    assert cli.returncode != 0 and 'Traceback' not in cli.stderr
    assert f'in use by process {holder.pid}' in cli.stderr
  finally:
    holder.kill()
    holder.wait()


_READER = textwrap.dedent('''
    import sys, time
    sys.path.insert(0, {root!r})
    from bds_jax import run_lock
    with run_lock.reading():  # as evaluate.py and synthesize.py hold the runs they read
      run_lock.check_no_writer({wd!r})
      print('reading', flush=True)
      time.sleep(120)
''')


def test_a_trainer_cannot_start_while_an_evaluation_reads_the_run(smoke_config, tmp_path):
  c = _quick(smoke_config, 10)
  wd = str(tmp_path / 'run')
  trainer.train_and_evaluate(c, wd)
  run_lock.release(wd)  # as when that trainer's process ended
  reader = subprocess.Popen([sys.executable, '-c', _READER.format(root=ROOT, wd=wd)],
                            stdout=subprocess.PIPE, text=True)
  try:
    assert reader.stdout.readline().strip() == 'reading'
    c.num_steps = 20
    with pytest.raises(run_lock.LockedError, match='in use by another process .reading it.'):
      trainer.train_and_evaluate(c, wd)
    assert os.listdir(os.path.join(wd, 'checkpoints')) == ['10']  # nothing rotated
  finally:
    reader.kill()
    reader.wait()
  assert trainer.train_and_evaluate(c, wd).step == 20  # the reader gone, training resumes
  # Outside reading() a check holds nothing afterwards; inside, this process's own read lock
  # gives way when it turns writer.
  with run_lock.reading():
    run_lock.check_no_writer(wd)
    run_lock.acquire(wd)
  run_lock.release(wd)


def test_stale_lock_of_a_dead_process_is_taken_over(smoke_config, tmp_path, caplog):
  wd = str(tmp_path / 'run')
  dead = _hold_lock(wd, die=True)
  dead.wait()
  assert json.load(open(os.path.join(wd, 'train.lock')))['pid'] == dead.pid
  with caplog.at_level(logging.WARNING):
    assert trainer.train_and_evaluate(_quick(smoke_config, 10), wd).step == 10
  assert f'Taking over the lock' in caplog.text and str(dead.pid) in caplog.text
  assert not run_lock.holds(wd)
  assert open(os.path.join(wd, 'train.lock')).read() == ''  # released


def test_resume_refuses_changed_data_or_lr_and_records_safe_changes(smoke_config, tmp_path):
  c = _quick(smoke_config, 10)
  wd = str(tmp_path / 'run')
  trainer.train_and_evaluate(c, wd)
  stored = open(os.path.join(wd, 'config.json')).read()
  norm = open(os.path.join(wd, 'normalization.json')).read()

  changed = c.copy_and_resolve_references()
  changed.data.builder_config = ''
  changed.optim.lr = 1e-2
  with pytest.raises(errors.ConfigError) as err:
    trainer.train_and_evaluate(changed, wd)
  msg = str(err.value)
  assert 'data.builder_config' in msg and '--config.data.builder_config=small' in msg
  assert 'optim.lr' in msg and '--config.optim.lr=0.003' in msg

  c.num_steps = 20
  c.log_every_steps = 5
  assert trainer.train_and_evaluate(c, wd).step == 20
  assert open(os.path.join(wd, 'config.json')).read() == stored  # written once
  assert open(os.path.join(wd, 'normalization.json')).read() == norm
  history = metric_writer.read_jsonl(os.path.join(wd, 'config_history.jsonl'))
  assert len(history) == 1 and history[0]['step'] == 10
  assert history[0]['changes'] == {'num_steps': [10, 20], 'log_every_steps': [10, 5]}
  trainer.train_and_evaluate(c, wd)  # the same again: nothing new to record
  assert len(metric_writer.read_jsonl(os.path.join(wd, 'config_history.jsonl'))) == 1


def test_cut_off_metrics_line_is_dropped_on_resume(smoke_config, tmp_path, caplog):
  c = _quick(smoke_config, 10)
  wd = str(tmp_path / 'run')
  trainer.train_and_evaluate(c, wd)
  with open(os.path.join(wd, 'metrics.jsonl'), 'a') as f:
    f.write('{"step": 11, "train/lo')
  c.num_steps = 20
  with caplog.at_level(logging.WARNING):
    trainer.train_and_evaluate(c, wd)
  assert 'cut-off last line' in caplog.text
  rows = metric_writer.read_jsonl(os.path.join(wd, 'metrics.jsonl'))
  assert [r['step'] for r in rows if 'train/loss' in r] == [10, 20]
  assert all(r['step'] in (10, 20) for r in rows)
  assert not os.path.exists(os.path.join(wd, 'metrics.jsonl.tmp'))
  # A bad line in the middle is not a crash's cut: a user error naming the file and line.
  path = os.path.join(wd, 'metrics.jsonl')
  with open(path) as f:
    lines = f.readlines()
  with open(path, 'w') as f:
    f.writelines(lines[:1] + ['{"step": 3, oops\n'] + lines[1:])
  with pytest.raises(errors.InputError, match=r'metrics.jsonl, line 2, is not JSON'):
    metric_writer.read_jsonl(path)


@pytest.mark.parametrize('field,value', [('model.width', 0), ('model.width', -3),
                                         ('data.batch_size', 0), ('optim.lr', 0.0),
                                         ('log_every_steps', 0)])
def test_bad_values_fail_before_anything_is_written(smoke_config, tmp_path, field, value):
  c = smoke_config
  parent, leaf = field.rpartition('.')[::2]
  (c[parent] if parent else c)[leaf] = value
  with pytest.raises(errors.ConfigError, match=f'--config.{field}={value!r}: must be'):
    trainer.train_and_evaluate(c, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()


def _run_cli(script, *args):
  return subprocess.run([sys.executable, script, *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS='cpu'))


def test_cli_user_errors_are_one_message_without_traceback(smoke_config, tmp_path):
  for arg, expect in (('--config.model.width=0', 'model.width=0: must be a positive integer'),
                      ('--config.model.widht=3', 'Did you mean "width"'),
                      ('--config.data.batch_size=0', 'batch_size=0: must be')):
    r = _run_cli('train.py', '--config=configs/behavior.py:smoke', f'--workdir={tmp_path}/x',
                 arg)
    assert r.returncode != 0 and 'Traceback' not in r.stderr, r.stderr
    errs = [l for l in r.stderr.splitlines() if l.startswith('Error:')]
    assert len(errs) == 1 and expect in errs[0], r.stderr
  r = _run_cli('evaluate.py', '--config=configs/behavior.py:smoke', f'--workdir={tmp_path}/no')
  assert r.returncode != 0 and 'Traceback' not in r.stderr and 'Error:' in r.stderr, r.stderr
  assert not (tmp_path / 'x').exists()
  # An error found once the data is loaded: one line, and the new run is not left half-made.
  r = _run_cli('train.py', '--config=configs/behavior.py:smoke', f'--workdir={tmp_path}/lag',
               f'--config.data.data_dir={smoke_config.data.data_dir}',
               '--config.data.frame_lag=1000')
  assert r.returncode != 0 and 'Traceback' not in r.stderr, r.stderr
  assert 'Lower data.seq_len or data.frame_lag' in r.stderr
  assert sorted(os.listdir(tmp_path / 'lag')) == ['train.lock']


def test_ctrl_c_saves_and_a_second_aborts(smoke_config, tmp_path):
  c = _quick(smoke_config, 12)
  c.checkpoint_every_steps = 100
  part = trainer.train_and_evaluate(c, str(tmp_path / 'a'),
                                    hooks=[training_hooks.signal_at(5, signal.SIGINT)])
  assert part.interrupted and part.step == 5
  assert os.listdir(tmp_path / 'a' / 'checkpoints') == ['5']
  with pytest.raises(KeyboardInterrupt):
    trainer.train_and_evaluate(
        c, str(tmp_path / 'b'), hooks=[training_hooks.signal_at(5, signal.SIGINT, times=2)])
  assert os.listdir(tmp_path / 'b' / 'checkpoints') == []
  assert not run_lock.holds(str(tmp_path / 'b'))


def test_full_disk_is_one_message_and_resume_works_after(smoke_config, tmp_path, monkeypatch,
                                                         capsys):
  c = _quick(smoke_config, 20)
  wd = str(tmp_path / 'run')
  real_save = checkpointing.Checkpointer.save

  def save(self, step, *args, **kwargs):
    if step == 20:
      raise OSError(errno.ENOSPC, 'No space left on device', self.directory)
    return real_save(self, step, *args, **kwargs)

  monkeypatch.setattr(checkpointing.Checkpointer, 'save', save)
  monkeypatch.delenv(errors.DEBUG_ENV, raising=False)
  with pytest.raises(SystemExit) as exit_:
    errors.main_with_clear_errors(lambda: trainer.train_and_evaluate(c, wd))
  assert exit_.value.code == 1
  err = capsys.readouterr().err
  assert 'the disk is full' in err and 'Traceback' not in err
  assert not run_lock.holds(wd)
  monkeypatch.setattr(checkpointing.Checkpointer, 'save', real_save)
  assert trainer.train_and_evaluate(c, wd).step == 20


def test_nan_before_any_checkpoint_says_so(smoke_config, tmp_path):
  c = smoke_config
  c.optim.lr = 1e30
  c.log_every_steps = 1
  c.checkpoint_every_steps = 1000
  with pytest.raises(trainer.NonFiniteLossError, match='no checkpoint was written yet'):
    trainer.train_and_evaluate(c, str(tmp_path))


def test_full_disk_records_of_background_threads_are_dropped(monkeypatch, caplog):
  # On a real 30 MiB tmpfs, orbax's save threads and asyncio's unretrieved futures each logged
  # the ENOSPC with a traceback (8 tracebacks, 365 lines) around the one-line message.
  monkeypatch.delenv(errors.DEBUG_ENV, raising=False)
  full = OSError(errno.ENOSPC, 'No space left on device')

  def run():
    logging.getLogger('absl').error('Save Finalize thread failed.', exc_info=(
        OSError, full, None))
    logging.getLogger('asyncio').error('Task exception was never retrieved',
                                       exc_info=(ValueError, ValueError(
                                           'RESOURCE_EXHAUSTED: Failed to write 5035 bytes: No '
                                           'space left on device'), None))
    logging.getLogger('absl').error('an unrelated failure is still shown')
    raise full

  with caplog.at_level(logging.INFO), pytest.raises(SystemExit):
    errors.main_with_clear_errors(run)
  messages = [r.getMessage() for r in caplog.records]
  assert messages == ['an unrelated failure is still shown']
