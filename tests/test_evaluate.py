"""evaluate.py end to end on tiny trained models: well-formed, deterministic, clear errors."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import types

import ml_collections
import numpy as np
import pytest

from bds_jax import kinds
from bds_jax import runs
from bds_jax.data import hmp as hmp_data
from bds_jax.evaluation import runner
from bds_jax.train import behavior as behavior_trainer
from bds_jax.train import flow as flow_trainer
from configs import behavior
from configs import evaluate as eval_configs
from configs import flow as flow_configs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def flow_workdir(behavior_workdir, tmp_path_factory):
  c = flow_configs.get_config('smoke')
  c.behavior_workdir = behavior_workdir
  c.num_steps = 6
  c.final_gif = False
  workdir = str(tmp_path_factory.mktemp('flow_run'))
  flow_trainer.train_and_evaluate(c, workdir)
  return workdir


def _eval_config(flow_workdir='', suites='all'):
  c = eval_configs.get_config('smoke')
  c.flow_workdir = flow_workdir
  c.suites = suites
  return c


def _finite_numbers(tree):
  if isinstance(tree, dict):
    return all(_finite_numbers(v) for v in tree.values())
  if isinstance(tree, list):
    return all(_finite_numbers(v) for v in tree)
  if isinstance(tree, float):
    return np.isfinite(tree)
  return True


def test_smoke_evaluation_writes_well_formed_results(behavior_workdir, flow_workdir, tmp_path):
  cfg = behavior.get_config('smoke')
  results = runner.evaluate(cfg, _eval_config(flow_workdir), behavior_workdir,
                            out_dir=str(tmp_path))
  with open(tmp_path / 'results.json') as f:
    on_disk = json.load(f)
  assert on_disk['runs'].keys() == {'ours'} and on_disk['dataset'] == 'synthetic_motion'
  run = on_disk['runs']['ours']
  assert set(run['suites']) == set(eval_configs.SUITES) and run['flow_step'] == 6
  s = run['suites']
  assert _finite_numbers(s)
  assert {'TDE', 'TDE_upstream', 'RE', 'RE_paper_same_data', 'acc', 'gt_acc',
          'd_beta'} <= set(s['transfer'])
  assert 'RE_body' not in s['transfer']  # a world-frame run: world RE only
  assert set(s['realism']) >= {'self', 'transfer', 'prior', 'flow'}
  for kind in ('self', 'transfer', 'prior', 'flow'):
    assert 0.0 <= s['realism'][kind]['heldout_auc'] <= 1.0
  assert set(s['diversity']['flow']) == {'3', '5'}
  assert {'APD', 'ADE', 'FDE', 'MMADE', 'MMFDE', 'CMD'} <= set(s['hmp']['flow'])
  assert s['hmp']['num_windows'] == 24
  gt = s['gt_transfer']
  assert gt['self']['num_pairs'] == gt['num_pairs'] == 24 and 'all' not in gt  # never pooled
  assert gt['direct']['num_pairs'] + gt['transition']['num_pairs'] == 24
  assert gt['self']['mpjpe_mm_model']['mean'] > 0 and gt['self']['mpjpe_mm_static']['mean'] > 0
  for cat in ('direct', 'transition'):
    if gt[cat]['num_pairs']:
      for name in ('model', 'static', 'source_offsets', 'copy_source'):
        assert gt[cat][f'mpjpe_mm_{name}']['mean'] > 0
      assert 0 <= gt[cat]['recognition_accuracy']['reenacted'] <= 1
      assert sum(n for n, _, _ in gt[cat]['by_class'].values()) == gt[cat]['num_pairs']
  for suite in eval_configs.SUITES:
    text = (tmp_path / f'{suite}.md').read_text()
    assert text.startswith('## ') and 'ours' in text
  assert 'paper: ours I_KL=100' in (tmp_path / 'transfer.md').read_text()
  assert results['runs']['ours']['step'] == 20


def test_evaluation_is_deterministic(behavior_workdir, tmp_path):
  cfg = behavior.get_config('smoke')
  ec = _eval_config(suites='transfer,diversity')
  a = runner.evaluate(cfg, ec, behavior_workdir, out_dir=str(tmp_path / 'a'))
  b = runner.evaluate(cfg, ec, behavior_workdir, out_dir=str(tmp_path / 'b'))
  assert a['runs']['ours']['suites'] == b['runs']['ours']['suites']
  # Suites evaluated one at a time accumulate for the same checkpoint.
  runner.evaluate(cfg, _eval_config(suites='transfer'), behavior_workdir,
                  out_dir=str(tmp_path / 'c'))
  runner.evaluate(cfg, _eval_config(suites='diversity'), behavior_workdir,
                  out_dir=str(tmp_path / 'c'))
  suites = [json.loads((tmp_path / d / 'results.json').read_text())['runs']['ours']['suites']
            for d in ('a', 'c')]
  assert suites[1] == suites[0]


def test_baseline_variants_share_one_table(behavior_workdir, smoke_config, tmp_path):
  c = smoke_config
  c.model.variant = 'cvae'
  c.num_steps = 4
  c.final_gif = False
  behavior_trainer.train_and_evaluate(c, str(tmp_path / 'cvae'))
  results = runner.evaluate(behavior.get_config('smoke'), _eval_config(suites='transfer'),
                            behavior_workdir, [str(tmp_path / 'cvae')], str(tmp_path / 'out'))
  assert list(results['runs']) == ['ours', 'cvae']
  table = (tmp_path / 'out' / 'transfer.md').read_text()
  assert '| ours |' in table and '| cvae |' in table


def test_body_frame_runs_report_re_on_both_kinds_of_target(behavior_workdir, tmp_path):
  """The session's smoke run, switched to model.frame='body' (the frame has no parameters, so
  its checkpoint loads as is): RE on world z-scores and on body-frame targets, both labelled."""
  workdir = tmp_path / 'body'
  shutil.copytree(behavior_workdir, workdir, ignore=shutil.ignore_patterns('eval'))
  stored = json.loads((workdir / 'config.json').read_text())
  stored['model']['frame'] = 'body'
  (workdir / 'config.json').write_text(json.dumps(stored))
  cfg = behavior.get_config('smoke')
  cfg.model.frame = 'body'
  results = runner.evaluate(cfg, _eval_config(suites='transfer'), str(workdir),
                            out_dir=str(tmp_path / 'out'))
  t = results['runs']['ours']['suites']['transfer']
  for kind in ('RE', 'RE_paper_same_data', 'RE_body', 'RE_body_paper_same_data'):
    assert set(t[kind]) == {str(v) for v in t['T']} and _finite_numbers(t[kind]), kind
  assert t['RE_body'] != t['RE']
  assert set(t['RE_kinds']) == {'RE', 'RE_body'} and 'world z-scores' in t['RE_kinds']['RE']
  table = (tmp_path / 'out' / 'transfer.md').read_text()
  assert '| ours, RE on world z-scores |' in table
  assert '| ours, RE on body-frame targets |' in table
  assert "the paper's RE column is this measurement" in table  # which one the paper compares
  assert 'has no paper counterpart' in table


def test_clear_errors(behavior_workdir, tmp_path):
  wide = behavior.get_config('smoke')
  wide.model.width = 64
  with pytest.raises(ValueError, match=r'(?s)does not match the run.*model.width: given 64, the run has 32'):
    runner.evaluate(wide, _eval_config(), behavior_workdir, out_dir=str(tmp_path))
  with pytest.raises(ValueError, match="unknown suite.*'tables'"):
    runner.evaluate(behavior.get_config('smoke'), _eval_config(suites='tables'),
                    behavior_workdir)
  with pytest.raises(FileNotFoundError, match='not a bds_jax training run'):
    runner.evaluate(behavior.get_config('smoke'), _eval_config(), str(tmp_path / 'none'))
  # A run stopped before its first checkpoint (config and normalization already written).
  empty = tmp_path / 'empty'
  os.makedirs(empty / 'checkpoints')
  for name in ('config.json', 'normalization.json'):
    with open(os.path.join(behavior_workdir, name)) as f:
      (empty / name).write_text(f.read())
  with pytest.raises(FileNotFoundError, match='holds no checkpoint yet'):
    runner.evaluate(behavior.get_config('smoke'), _eval_config(), str(empty))


def test_cli(behavior_workdir, tmp_path):
  out = subprocess.run(
      [sys.executable, 'evaluate.py', '--config=configs/behavior.py:smoke',
       f'--workdir={behavior_workdir}', '--eval_config=configs/evaluate.py:smoke',
       '--eval_config.suites=diversity', f'--out_dir={tmp_path}'],
      cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ,
                                                                      JAX_PLATFORMS='cpu'))
  assert out.returncode == 0, out.stderr[-3000:]
  assert (tmp_path / 'diversity.md').exists() and 'results.json' in out.stdout


def test_old_run_configs_get_new_defaults(tmp_path):
  (tmp_path / 'config.json').write_text(json.dumps(
      {'trainer': 'behavior', 'model': {'width': 8, 'regressor_widths': [4, 2]}}))
  cfg = runs.read_config(str(tmp_path), 'behavior')
  assert cfg.model.width == 8 and cfg.model.regressor_widths == (4, 2)
  assert cfg.model.compute_dtype == 'float32'  # a field this run's config predates
  with pytest.raises(ValueError, match="holds a 'behavior' run, not a 'flow' run"):
    runs.read_config(str(tmp_path), 'flow')


def test_resampling_to_50hz_is_exact_for_linear_motion():
  start = np.zeros((17, 3))
  velocity = np.linspace(0.01, 0.02, 51).reshape(17, 3)
  predicted = np.stack([start + velocity * 2 * (k + 1) for k in range(50)])  # lag 2
  full = hmp_data.resample(start[None], predicted[None], 2, 100)[0]
  expected = np.stack([start + velocity * t for t in range(1, 101)])
  np.testing.assert_allclose(full, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


def test_table5_prints_the_newer_pose_guided_rows_apart():
  from bds_jax.evaluation import appearance as appearance_eval  # pylint: disable=g-import-not-at-top
  m = {'ssim': 0.5, 'is': None, 'fid': None, 'l1': 0.2}
  r = {'inception': 'no Inception weights given', 'reconstruction': m, 'transfer': m,
       'real': {'is': None}, 'num_images': 4,
       'posture_probe': {'probe_error': 0.1, 'adversary_error': 0.1, 'mean_pose_error': 0.1,
                         'train_images': 8, 'test_images': 4, 'steps': 2}}
  table = appearance_eval.table({'ours': r}, 'deepfashion')
  assert ('| published: PCDMs (ICLR\'24) (DeepFashion) ◀ | pose transfer at 256×176 (their '
          'protocol) | 0.744 | | 7.47 | |') in table
  assert '| published: IMAGPose (NeurIPS\'24) (Market-1501) | pose transfer at 128×64' in table
  assert 'compare them only with numbers made that way' in table and '0.1284' in table


def test_a_new_metric_follows_the_architecture_recipe(behavior_workdir, tmp_path, monkeypatch):
  """docs/architecture.md, "A metric", done by a test: an evaluator module with run() (and its
  table beside it), a section of the eval config and a name in its kind's suites; evaluate
  then runs it, writes it to results.json and renders <suite>.md with its own table."""
  toy = types.ModuleType('bds_jax.evaluation.toy_metric')

  def run(ctx, *, seed: int, num_windows: int):
    del seed
    x = np.stack([ctx.test.window(0, i)[:ctx.seq_len] for i in range(num_windows)])
    mu, _ = ctx.posterior(x)
    yield 'code_norm', float(np.mean(np.linalg.norm(mu, axis=-1)))
    yield 'windows', {'count': num_windows}

  toy.run = run
  toy.table = lambda results, dataset: '\n'.join(
      [f'## Toy metric on {dataset}', '| model | code norm |', '|---|---|']
      + [f'| {name} | {r["code_norm"]:.3f} |' for name, r in results.items()]) + '\n'
  monkeypatch.setitem(sys.modules, toy.__name__, toy)
  kind = kinds.KINDS['behavior']
  monkeypatch.setitem(kinds.KINDS, 'behavior', dataclasses.replace(
      kind, eval_suites=kind.eval_suites + ('toy_metric',)))
  c = _eval_config(suites='toy_metric')
  c.toy_metric = ml_collections.ConfigDict({'num_windows': 3})
  results = runner.evaluate(behavior.get_config('smoke'), c, behavior_workdir,
                            out_dir=str(tmp_path / 'out'))
  r = results['runs']['ours']['suites']['toy_metric']
  assert r['windows'] == {'count': 3} and r['code_norm'] > 0
  stored = json.loads((tmp_path / 'out' / 'results.json').read_text())
  assert stored['runs']['ours']['suites']['toy_metric'] == r
  table = (tmp_path / 'out' / 'toy_metric.md').read_text()
  assert table.startswith('## Toy metric on synthetic_motion') and f'{r["code_norm"]:.3f}' in table
