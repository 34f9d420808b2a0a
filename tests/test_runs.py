"""Runs written before the runs API (tests/fixtures/smoke_run_v1) still load, sample and evaluate.

The fixture was trained by the code of f4f71a5; its README says how. Its config.json names no
data dir, so the tests point it at the session's dataset, the same `small` synthetic_motion.
"""

import json
import os

import jax
import numpy as np
import pytest

from bds_jax import runs
from bds_jax.data import assembly
from bds_jax.data import pipeline
from bds_jax.evaluation import common
from bds_jax.evaluation import runner
from bds_jax.evaluation.context import Context
from bds_jax.train import behavior_step
from configs import evaluate as eval_configs

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'smoke_run_v1')


def test_layout_and_config_of_an_old_run(data_dir):
  run = runs.Run(FIXTURE, data_dir=data_dir)
  assert run.exists() and run.trainer == 'behavior'
  assert run.checkpoint_dir == os.path.join(FIXTURE, 'checkpoints')
  assert run.config.data.data_dir == data_dir  # redirected; config.json says ''
  assert run.config.model.regressor_widths == (16, 8)
  flow_run = run.flow_run()
  assert flow_run.path == os.path.join(FIXTURE, 'flow') and flow_run.trainer == 'flow'
  assert flow_run.behavior_run().path == FIXTURE  # its behavior_workdir '..', resolved
  with pytest.raises(ValueError, match="holds a 'flow' run, not a 'behavior' run"):
    flow_run.load_behavior()


def test_parameters_load_alone_and_sample_as_before():
  run = runs.Run(FIXTURE)
  flow = run.load_flow()
  behavior = flow.behavior
  assert (behavior.step, flow.step) == (20, 6)
  assert set(behavior.params) == {'encoder', 'decoder'}
  assert set(flow.params) == {'blocks'} and set(flow.buffers) == {'blocks'}
  # Loaded through the flow run alone, the same model.
  alone = runs.Run(os.path.join(FIXTURE, 'flow')).load_flow()
  assert alone.behavior.run.path == FIXTURE and alone.step == 6

  ref = np.load(os.path.join(FIXTURE, 'reference_samples.npz'))
  sampler = run.sampler()
  for prior in ('flow', 'gaussian'):
    z = jax.device_get(sampler.sample_codes(2, jax.random.key(0), prior))
    np.testing.assert_allclose(z, ref[f'{prior}_codes'], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sampler.decode(z, ref['start_poses']), ref[f'{prior}_poses'],
                               rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(
      sampler.sample_loop(jax.random.key(1), ref['start_poses'][0], num_behaviors=2),
      ref['loop'], rtol=1e-5, atol=1e-5)


def test_training_evaluator_reproduces_the_old_runs_evaluation(data_dir):
  """The batch_means evaluator on the restored parameters gives the reconstruction and KL the
  old trainer logged at its last step."""
  run = runs.Run(FIXTURE, data_dir=data_dir)
  behavior = run.load_behavior()
  config = run.config
  setup, state = behavior_step.build(config, steps_per_epoch=1)
  state = dict(jax.device_put(state), vae=behavior.params)  # the regressor stays untrained
  windows = assembly.load_windows(config.data, config.data.eval_split, behavior.normalizer)
  eval_set = pipeline.fixed_windows(windows, config.eval_batches * config.data.batch_size,
                                    seed=config.seed + 7, paired=True)
  step = jax.jit(lambda state, batch: behavior_step.eval_step(setup, state, batch))
  ctx = Context('fixture', config, behavior.normalizer, None, windows, config.data.batch_size,
                fns={'eval_step': lambda state, batch, index: step(state, batch)},
                data={'eval': eval_set})
  got = common.collect(common.get('batch_means'), ctx.at(state, behavior.step))
  with open(os.path.join(FIXTURE, 'final_metrics.json')) as f:
    logged = json.load(f)
  for key in ('recon', 'kl'):
    np.testing.assert_allclose(got[key], logged[f'eval/{key}'], rtol=1e-5)


def test_old_run_evaluates(data_dir, tmp_path):
  ec = eval_configs.get_config('smoke')
  ec.suites = 'diversity,hmp'
  ec.data_dir = data_dir
  results = runner.evaluate(runs.read_config(FIXTURE, 'behavior'), ec, FIXTURE,
                            out_dir=str(tmp_path))
  run = results['runs']['ours']
  assert (run['step'], run['flow_step']) == (20, 6)
  assert run['flow'] == os.path.join(FIXTURE, 'flow')
  assert set(run['suites']['diversity']) == {'num_conditionings', 'gaussian', 'flow'}
  assert {'APD', 'ADE', 'FDE'} <= set(run['suites']['hmp']['flow'])
  assert sorted(os.listdir(tmp_path)) == ['diversity.md', 'hmp.md', 'results.json']
