"""The registry of model kinds (bds_jax/kinds.py): every per-kind decision is a lookup there.

A kind registered from a test, with no edit of the package, is seen by train.py's dispatch,
by reading a stored config, by the resume checks and by evaluate.py's checks; unknown names
fail with the known kinds listed. Fast: no training, no dataset (open_for_training only looks
for checkpoint folders).
"""

import dataclasses
import importlib.util
import json
import os

import ml_collections
import pytest

from bds_jax import errors
from bds_jax import kinds
from bds_jax import run_config
from bds_jax import run_lock
from bds_jax import runs
from bds_jax import train as trainers
from bds_jax.evaluation import runner
from configs import appearance as appearance_configs
from configs import evaluate as eval_configs

TOY_TRAINER = '''
def train_and_evaluate(config, workdir):
  return ('toy trained', config.toy.speed, workdir)
'''


@pytest.fixture
def registry(monkeypatch):
  """kinds.KINDS as a copy, so that what a test registers is gone after it."""
  monkeypatch.setattr(kinds, 'KINDS', dict(kinds.KINDS))
  return kinds.KINDS


def _toy_config(**toy) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.trainer = 'toy'
  c.seed = 0
  c.num_steps = 10
  c.log_every_steps = 5
  c.checkpoint_every_steps = 5
  c.progress_bar = False
  c.toy = ml_collections.ConfigDict(dict(dict(speed=1.0, size=3, colour='grey'), **toy))
  c.data = ml_collections.ConfigDict(dict(name='toyset', batch_size=2))
  return c


def _open(config, workdir: str) -> runs.Run:
  """run_config.open_for_training, releasing the run's lock again (one process opens it
  several times here)."""
  try:
    return run_config.open_for_training(config, workdir)
  finally:
    run_lock.release(os.path.abspath(workdir))


def _fake_checkpoint(workdir: str, step: int):
  os.makedirs(os.path.join(runs.Run(workdir).checkpoint_dir, str(step)))


def test_a_kind_registered_outside_the_package_is_seen_by_every_lookup(
    registry, tmp_path, monkeypatch):
  (tmp_path / 'toy_trainer.py').write_text(TOY_TRAINER)
  monkeypatch.syspath_prepend(str(tmp_path))
  kinds.register(kinds.Kind(
      'toy', trainer='toy_trainer', safe_to_change=kinds.LOOP + ('toy.speed',),
      added_fields={'toy.colour': 'grey'}, checked_fields=('toy.size',)))
  assert 'toy' in registry and 'toy' in kinds.names()

  # train.py's dispatch: the trainer, imported by the module name the row gives.
  assert trainers.trainer_module('toy').train_and_evaluate(_toy_config(), 'wd') == (
      'toy trained', 1.0, 'wd')

  # Resume checks: its safe fields are accepted (and recorded), any other refused.
  wd = str(tmp_path / 'run')
  _open(_toy_config(), wd)
  _fake_checkpoint(wd, 5)
  faster = _toy_config(speed=2.0)
  faster.num_steps = 20
  run = _open(faster, wd)
  assert run.safe_changes == {'num_steps': (10, 20), 'toy.speed': (1.0, 2.0)}
  with pytest.raises(errors.ConfigError, match=r'(?s)toy.size: the run has 3, this config 4 '
                     r'.*may change on resume: .*toy\.speed'):
    _open(_toy_config(size=4), wd)

  # Reading the stored config of a run older than toy.colour: the field is filled in.
  old = tmp_path / 'old'
  old.mkdir()
  (old / 'config.json').write_text(json.dumps({'trainer': 'toy', 'toy': {'size': 3}}))
  assert runs.read_config(str(old), 'toy').toy.colour == 'grey'
  stored = runs.read_config(wd, 'toy')
  assert runs.Run(wd).kind is registry['toy']
  with pytest.raises(ValueError, match="'toy' run, which has no loader"):
    runs.Run(wd).load()

  # evaluate.py's check of the given config.
  kinds.check_given_config(_toy_config(speed=9.0), stored, wd)  # toy.speed is not checked
  with pytest.raises(errors.ConfigError, match='toy.size: given 4, the run has 3'):
    kinds.check_given_config(_toy_config(size=4), stored, wd)
  with pytest.raises(errors.ConfigError, match="a 'behavior' config but .* holds a 'toy' run"):
    kinds.check_given_config(ml_collections.ConfigDict({'trainer': 'behavior'}), stored, wd)

  # evaluate.py: which runs it evaluates, and with which suites.
  with pytest.raises(errors.ConfigError, match=r"evaluate.py evaluates \['appearance', "
                     r"'behavior'\]"):
    runner.evaluate(_toy_config(), eval_configs.get_config('smoke'), wd)
  registry['toy'] = dataclasses.replace(registry['toy'], trained_over='behavior')
  with pytest.raises(errors.ConfigError, match='evaluate the behavior run it was trained over'):
    runner.evaluate(_toy_config(), eval_configs.get_config('smoke'), wd)
  registry['toy'] = dataclasses.replace(registry['toy'], eval_context='behavior',
                                        eval_suites=('transfer', 'diversity'))
  assert runner.parse_suites('all', eval_configs.get_config(), 'toy') == [
      'diversity', 'transfer']  # in the eval config's (sorted) order
  with pytest.raises(errors.ConfigError, match=r"unknown suite\(s\) \['hmp'\] for this toy"):
    runner.parse_suites('hmp', eval_configs.get_config(), 'toy')

  with pytest.raises(ValueError, match="'toy' is registered already"):
    kinds.register(kinds.Kind('toy', trainer='toy_trainer'))


def test_unknown_kinds_are_named_with_the_known_ones(registry, tmp_path):
  del registry
  known = r"\['appearance', 'behavior', 'diffusion', 'flow'\]"
  with pytest.raises(errors.ConfigError,
                     match=f"config.trainer: unknown kind of model 'nope'; .* {known}"):
    kinds.get('nope')
  with pytest.raises(errors.ConfigError, match=known):
    trainers.trainer_module('nope')
  (tmp_path / 'config.json').write_text(json.dumps({'trainer': 'nope'}))
  with pytest.raises(errors.InputError, match=f"unknown trainer 'nope'; expected one of {known}"):
    runs.read_config(str(tmp_path))
  with pytest.raises(errors.ConfigError, match=known):
    run_config.differences({}, _toy_config(), 'nope')
  assert not kinds.eigen_convolutions('nope') and kinds.eigen_convolutions('appearance')


def test_the_rows_match_the_configs_and_trainers():
  for kind in kinds.KINDS.values():
    assert importlib.util.find_spec(kind.trainer) is not None, kind.trainer
    config = importlib.import_module(f'configs.{kind.name}').get_config()
    assert config.trainer == kind.name
    for field in (*kind.checked_fields, *kind.added_fields):
      node = config
      for part in field.split('.'):
        assert part in node, f'{kind.name}: {field} is not in configs/{kind.name}.py'
        node = node[part]
    assert kind.loader is None or callable(getattr(runs.Run, kind.loader))
  assert kinds.get('behavior').eval_suites == eval_configs.SUITES
  assert kinds.get('appearance').eval_suites == eval_configs.APPEARANCE_SUITES


def test_appearance_runs_resume_with_the_changes_behavior_runs_allow(tmp_path):
  behavior, appearance = kinds.get('behavior'), kinds.get('appearance')
  # The same loop and data-reading fields; each kind's own figure settings beside them.
  assert (set(behavior.safe_to_change) - {'gif_examples'}
          == set(appearance.safe_to_change) - {'figure_every_steps', 'figure_examples'})
  c = appearance_configs.get_config('smoke')
  wd = str(tmp_path / 'appearance')
  _open(c, wd)
  _fake_checkpoint(wd, 10)
  c.num_steps = 60
  c.log_every_steps, c.eval_every_steps, c.checkpoint_every_steps = 3, 7, 20
  c.figure_every_steps, c.keep_checkpoints, c.progress_bar = 5, 1, True
  run = _open(c, wd)
  # The evaluator and figure cadences follow eval_every_steps and figure_every_steps.
  assert set(run.safe_changes) == {
      'num_steps', 'log_every_steps', 'eval_every_steps', 'checkpoint_every_steps',
      'figure_every_steps', 'keep_checkpoints', 'progress_bar', 'evals.eval.every_steps',
      'evals.figure.every_steps'}
  run_config.record_safe_changes(run, 10)
  assert 'num_steps' in json.loads((tmp_path / 'appearance' / 'config_history.jsonl')
                                   .read_text())['changes']
  c.model.nf_max = 2 * c.model.nf_max
  with pytest.raises(errors.ConfigError, match='model.nf_max: the run has'):
    _open(c, wd)
