"""The flow prior: invertibility, exact log-determinants, ActNorm init, training and sampling."""

import os

import jax
import numpy as np
import pytest
from flax import nnx

from bds_jax import runs
from bds_jax import metric_writer
from bds_jax.metrics import gaussianity
from bds_jax.models import flow as flow_lib
from bds_jax.train import flow as flow_trainer
from configs import flow as flow_config
import training_hooks  # pylint: disable=g-bad-import-order


def _flow(dim=8, blocks=3, width=16, layers=2, seed=0):
  f = flow_lib.FlowPrior(dim, blocks, width, layers, nnx.Rngs(seed), seed=seed)
  z = 2.0 * jax.random.normal(jax.random.key(seed + 1), (64, dim)) + 0.5
  return flow_lib.initialize_actnorm(f, z), z


@pytest.mark.parametrize('layers', [2, 4])
def test_inverse_of_forward_and_forward_of_inverse(layers):
  f, z = _flow(layers=layers)
  u, log_det = f.forward(z)
  z_back, inv_log_det = f.inverse(u)
  np.testing.assert_allclose(z_back, z, atol=1e-4)
  np.testing.assert_allclose(inv_log_det, -log_det, atol=1e-4)
  u2 = jax.random.normal(jax.random.key(9), (16, 8))
  np.testing.assert_allclose(f.forward(f.inverse(u2)[0])[0], u2, atol=1e-4)
  assert np.abs(np.asarray(u) - np.asarray(z)).max() > 0.1  # not the identity


def test_log_det_equals_brute_force_jacobian():
  f, z = _flow(dim=6)
  _, log_det = f.forward(z[:5])
  jac = jax.vmap(jax.jacfwd(lambda x: f.forward(x[None])[0][0]))(z[:5])
  np.testing.assert_allclose(log_det, np.linalg.slogdet(np.asarray(jac))[1], rtol=1e-4,
                             atol=1e-4)


def test_actnorm_init_whitens_each_block_input():
  f, z = _flow(dim=8, blocks=3)
  x = z
  for block in f.blocks:
    bijectors = block.bijectors()
    h = bijectors[0].forward(x)  # the ActNorm output on the init batch
    np.testing.assert_allclose(h.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(h.std(0, ddof=1), 1.0, atol=1e-4)
    for b in bijectors:
      x = b.forward(x)
  with pytest.raises(ValueError, match='batch of codes'):
    flow_lib.initialize_actnorm(f, z[:1])


def test_distrax_distribution_matches_log_prob_and_samples():
  f, z = _flow()
  np.testing.assert_allclose(f.distribution().log_prob(z[:4]), flow_lib.log_prob(f, z[:4]),
                             rtol=1e-5)
  assert f.sample(jax.random.key(0), 5).shape == (5, 8)
  # A flow that is only ActNorm (whitening) gives the Gaussian density of the whitened codes.
  nll, log_det = flow_lib.nll_terms(f, z)
  assert np.isfinite(float(nll)) and np.isfinite(float(log_det))


def test_preset_sizes():
  def count(dim, blocks, width, layers):
    abstract = nnx.eval_shape(lambda: flow_lib.FlowPrior(dim, blocks, width, layers,
                                                         nnx.Rngs(0)))
    return sum(x.size for x in jax.tree.leaves(nnx.state(abstract, nnx.Param)))
  up = flow_config.get_config('upstream').flow
  paper = flow_config.get_config().flow
  assert 6.25e8 < count(1024, up.num_blocks, up.hidden_width, up.num_layers) < 6.35e8
  assert 6.2e7 < count(1024, paper.num_blocks, paper.hidden_width, paper.num_layers) < 6.4e7
  with pytest.raises(ValueError, match='unknown|Unknown preset'):
    flow_config.get_config('huge')


def test_ks_diagnostic():
  rng = np.random.default_rng(0)
  assert gaussianity.ks_normal(rng.normal(size=(2000, 20)))['ks_pass_fraction'] >= 0.8
  assert gaussianity.ks_normal(rng.exponential(size=(2000, 20)))['ks_pass_fraction'] == 0.0


def _smoke(behavior_workdir, **kw):
  c = flow_config.get_config('smoke')
  c.behavior_workdir = behavior_workdir
  for k, v in kw.items():
    setattr(c, k, v)
  return c


def test_flow_training_lowers_nll_and_resumes_exactly(behavior_workdir, tmp_path):
  c = _smoke(behavior_workdir, num_steps=60, final_gif=False, eval_every_steps=1000)
  c.optim.lr = 3e-3
  full = flow_trainer.train_and_evaluate(c, str(tmp_path / 'full'))
  loss = [r['train/loss'] for r in metric_writer.read_jsonl(str(tmp_path / 'full' /
                                                                'metrics.jsonl'))
          if 'train/loss' in r]
  assert np.mean(loss[-3:]) < np.mean(loss[:2]) - 1.0, loss
  assert 0.0 <= full.eval_metrics['eval/flow_ks_pass_fraction'] <= 1.0

  part = flow_trainer.train_and_evaluate(c, str(tmp_path / 'split'),
                                         hooks=[training_hooks.signal_at(7)])
  assert part.interrupted and part.step == 7
  resumed = flow_trainer.train_and_evaluate(c, str(tmp_path / 'split'))
  for a, b in zip(jax.tree.leaves(jax.device_get(full.state)),
                  jax.tree.leaves(jax.device_get(resumed.state))):
    np.testing.assert_array_equal(a, b)


def test_sampling_api_and_sample_videos(behavior_workdir, tmp_path):
  c = _smoke(behavior_workdir, num_steps=4, checkpoint_every_steps=4)
  flow_trainer.train_and_evaluate(c, str(tmp_path))
  samples = os.listdir(tmp_path / 'samples')
  assert 'sample_loop_step_0000004.gif' in samples and 'samples_step_0000004.gif' in samples

  flow_run = runs.Run(str(tmp_path)).load_flow()
  behavior = flow_run.behavior
  assert flow_run.step == 4 and behavior.step == 20
  sampler = flow_run.sampler()
  for prior in ('flow', 'gaussian'):
    z = sampler.sample_codes(3, jax.random.key(0), prior)
    assert z.shape == (3, behavior.config.model.width)
  start = np.zeros((3, 17, 3), np.float32) + np.linspace(0, 1.7, 17)[None, :, None]
  seqs = sampler.decode(z, start)
  assert seqs.shape == (3, behavior.config.data.seq_len + 1, 17, 3)
  np.testing.assert_allclose(seqs[:, 0], start, atol=1e-5)
  chain = sampler.sample_loop(jax.random.key(1), start[0], num_behaviors=3)
  assert chain.shape == (3 * behavior.config.data.seq_len + 1, 17, 3)
  # Each behavior continues from where the previous one ended: re-decoding segment 2 from the
  # end of segment 1 with the same code reproduces it.
  keys = jax.random.split(jax.random.key(1), 3)
  t = behavior.config.data.seq_len
  seg2 = sampler.decode(sampler.sample_codes(1, keys[1], 'flow'), chain[t:t + 1])[0]
  np.testing.assert_allclose(seg2, chain[t:2 * t + 1], atol=1e-4)
  with pytest.raises(ValueError, match="prior='flow' needs a trained flow"):
    behavior.sampler().sample_codes(2, jax.random.key(0), 'flow')
  with pytest.raises(ValueError, match="prior='vae'"):
    sampler.sample_codes(2, jax.random.key(0), 'vae')


def test_flow_needs_a_behavior_run(tmp_path):
  with pytest.raises(ValueError, match='behavior_workdir is required'):
    flow_trainer.train_and_evaluate(flow_config.get_config('smoke'), str(tmp_path))
  with pytest.raises(FileNotFoundError, match='not a bds_jax training run'):
    flow_trainer.train_and_evaluate(_smoke(str(tmp_path / 'nothing')), str(tmp_path / 'f'))
