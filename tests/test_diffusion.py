"""The observation-conditioned diffusion prior: schedule, sampler, guidance, trainer, API."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from bds_jax import errors
from bds_jax import run_layout
from bds_jax import runs
from bds_jax.models import diffusion as diffusion_lib
from bds_jax.train import diffusion as diffusion_trainer
from bds_jax.viz import report_page
from configs import diffusion as diffusion_config
from tests import training_hooks

# Stochastic-HMP spec §5.3, to the printed precision.
SPEC_BETAS = (0.309, 0.192, 0.182, 0.187, 0.203, 0.230, 0.275, 0.354, 0.514, 0.999)
SPEC_ABAR = (0.691, 0.558, 0.457, 0.371, 0.296, 0.228, 0.165, 0.107, 0.052, 5e-5)


def test_schedule_matches_the_spec():
  betas = diffusion_lib.sqrt_schedule(10)
  np.testing.assert_allclose(betas, SPEC_BETAS, atol=6e-4)
  abar = diffusion_lib.alphas_cumprod(betas)
  np.testing.assert_allclose(abar[:-1], SPEC_ABAR[:-1], atol=6e-4)
  assert 0 < abar[-1] < 1e-4  # the last step is (almost) pure noise
  with pytest.raises(ValueError, match='num_steps'):
    diffusion_lib.sqrt_schedule(0)


# ------------------------------------------------------------------------------ toy problem
# Four modes at (±0.6, ±0.6); label 0 is a left mode, label 1 a right one. Unguided samples
# should cover all four modes evenly, guided ones the label's side. (Best-of-K training learns
# each condition's support, not the frequencies within it, so labels that only shift the odds
# between modes would not be a fair test of guidance.)
MODES = np.array([[-0.6, -0.6], [-0.6, 0.6], [0.6, -0.6], [0.6, 0.6]], np.float32)


def _toy_batch(key, n):
  k_lab, k_side, k_mode, k_noise = jax.random.split(key, 4)
  label = jax.random.bernoulli(k_lab, 0.5, (n,)).astype(jnp.int32)
  del k_side
  mode = 2 * label + jax.random.bernoulli(k_mode, 0.5, (n,)).astype(jnp.int32)
  x = jnp.asarray(MODES)[mode] + 0.04 * jax.random.normal(k_noise, (n, 2))
  return x, label


@pytest.fixture(scope='module')
def toy_denoiser():
  """A small label-conditional x0-predicting denoiser trained on the toy problem with
  BeLFusion's best-of-K loss (K = 16 noisy copies at one step t) and 20% label dropout."""
  model = diffusion_lib.Denoiser(2, 1, 64, 2, 2, nnx.Rngs(0), cond_dim=32)
  graph, params = nnx.split(model)
  abar = jnp.asarray(diffusion_lib.alphas_cumprod(diffusion_lib.sqrt_schedule(10)), jnp.float32)
  tx = optax.adam(3e-3)

  b, k = 64, 16

  def loss_fn(params, key):
    k_x, k_t, k_n, k_d = jax.random.split(key, 4)
    x0, label = _toy_batch(k_x, b)
    t = jnp.repeat(jax.random.randint(k_t, (b,), 0, 10), k)
    x_t = diffusion_lib.q_sample(abar, jnp.repeat(x0, k, axis=0), t,
                                 jax.random.normal(k_n, (b * k, 2)))
    label = jnp.repeat(jnp.where(jax.random.bernoulli(k_d, 0.2, (b,)), 2, label), k)
    pred = nnx.merge(graph, params)(x_t, t, jnp.zeros((b * k, 1)), label)
    return jnp.mean(diffusion_lib.best_of_k_loss(pred.reshape(b, k, 2), x0, 'l1'))

  def step(carry, key):
    params, opt = carry
    grads = jax.grad(loss_fn)(params, key)
    updates, opt = tx.update(grads, opt)
    return (optax.apply_updates(params, updates), opt), None

  (params, _), _ = jax.jit(lambda p, o: jax.lax.scan(
      step, (p, o), jax.random.split(jax.random.key(1), 1500)))(params, tx.init(params))
  return nnx.merge(graph, params), abar


def _toy_samples(toy, n, label=None, guidance=1.0, seed=0):
  model, abar = toy
  graph, params = nnx.split(model)
  lab = None if label is None else jnp.full((n,), label, jnp.int32)

  @jax.jit
  def sample(params, lab, guidance):
    fn = lambda x, t: diffusion_lib.guided_x0(nnx.merge(graph, params), x, t,
                                              jnp.zeros((n, 1)), lab, guidance)
    return diffusion_lib.ddim_sample(fn, abar, jax.random.normal(jax.random.key(seed), (n, 2)))

  return np.asarray(sample(params, lab, jnp.float32(guidance)))


def test_ddim_x0_sampler_recovers_the_toy_modes(toy_denoiser):
  x = _toy_samples(toy_denoiser, 800)
  dist = np.linalg.norm(x[:, None] - MODES[None], axis=-1)
  near = dist.min(axis=1) < 0.15  # modes are 1.2 apart, each with std 0.04
  assert near.mean() > 0.8, near.mean()
  share = np.bincount(dist.argmin(axis=1)[near], minlength=4) / near.sum()
  np.testing.assert_allclose(share, 0.25, atol=0.08)


def test_guidance_moves_the_label_distribution(toy_denoiser):
  def left(label, guidance):
    return float(np.mean(_toy_samples(toy_denoiser, 800, label, guidance)[:, 0] < 0))
  unguided = left(None, 1.0)
  assert abs(unguided - 0.5) < 0.08, unguided
  for guidance in (1.0, 2.0):
    assert left(0, guidance) > 0.9, (guidance, left(0, guidance))
    assert left(1, guidance) < 0.1, (guidance, left(1, guidance))


# ------------------------------------------------------------------------------ trainer
def _smoke(behavior_workdir, **kw):
  c = diffusion_config.get_config('smoke')
  c.behavior_workdir = behavior_workdir
  c.optim.obs_steps = 5
  for k, v in kw.items():
    setattr(c, k, v)
  return c


@pytest.fixture(scope='module')
def diffusion_run(behavior_workdir, tmp_path_factory):
  """A smoke diffusion run (30 steps; observation only, the default) and the per-step training
  metrics."""
  workdir = str(tmp_path_factory.mktemp('diffusion_run'))
  seen = []
  result = diffusion_trainer.train_and_evaluate(
      _smoke(behavior_workdir), workdir,
      hooks=[lambda step, m: seen.append(jax.device_get(m))])
  return workdir, result, seen


@pytest.fixture(scope='module')
def labelled_run(behavior_workdir, tmp_path_factory):
  """A shorter action-conditioned smoke run (model.use_labels=True; 10 steps)."""
  workdir = str(tmp_path_factory.mktemp('diffusion_labels_run'))
  c = _smoke(behavior_workdir, num_steps=10)
  c.model.use_labels = True
  diffusion_trainer.train_and_evaluate(c, workdir)
  return workdir


def test_default_prior_is_observation_only_and_scaled_on_the_whole_train_split(
    behavior_workdir, diffusion_run):
  from bds_jax.data import assembly, observed  # pylint: disable=g-import-not-at-top
  assert not diffusion_config.get_config().model.use_labels
  assert not diffusion_config.get_config('h36m').model.use_labels
  assert diffusion_config.get_config('labels').model.use_labels
  workdir, _, _ = diffusion_run
  d = runs.Run(workdir).load_diffusion()
  assert d.prior().num_labels == 0
  with open(os.path.join(workdir, run_layout.CODE_STATS_FILE)) as f:
    stored = json.load(f)
  bcfg = d.behavior.config
  train = observed.ObservedWindows(assembly.load_split(bcfg.data, bcfg.data.train_split),
                                   d.behavior.normalizer, 25, bcfg.data.seq_len,
                                   bcfg.data.frame_lag)
  assert stored['rule'] == 'every training example' and stored['codes'] == len(train)
  # The copy is what the checkpoint holds, and the clipped range [-1, 1] covers every code.
  np.testing.assert_allclose(stored['code_lo'], d.stats['code_lo'], rtol=1e-6)
  np.testing.assert_allclose(stored['code_hi'], d.stats['code_hi'], rtol=1e-6)
  assert np.all(np.asarray(stored['code_lo']) < np.asarray(stored['code_hi']))


def test_smoke_training_lowers_both_losses(diffusion_run):
  _, result, seen = diffusion_run
  recon = [float(m['obs_recon']) for m in seen[:5]]
  latent = [float(m['latent']) for m in seen[5:]]
  assert all(float(m['latent']) == 0 for m in seen[:5]) and all(r == 0 for r in
                                                                 [m['obs_recon'] for m in seen[5:]])
  assert recon[-1] < recon[0], recon
  assert np.mean(latent[-5:]) < np.mean(latent[:5]), latent
  assert np.isfinite(result.eval_metrics['eval/sample_ade'])
  assert np.isfinite(result.eval_metrics['eval/gaussian_ade'])


def test_resumes_exactly(behavior_workdir, diffusion_run, tmp_path):
  _, full, _ = diffusion_run
  c = _smoke(behavior_workdir)
  part = diffusion_trainer.train_and_evaluate(c, str(tmp_path),
                                              hooks=[training_hooks.signal_at(8)])
  assert part.interrupted and part.step == 8
  resumed = diffusion_trainer.train_and_evaluate(c, str(tmp_path))
  assert resumed.step == 30
  for a, b in zip(jax.tree.leaves(jax.device_get(full.state)),
                  jax.tree.leaves(jax.device_get(resumed.state))):
    np.testing.assert_array_equal(a, b)


def _observation(n_frames=25, joints=17):
  rng = np.random.default_rng(0)
  base = np.zeros((joints, 3), np.float32) + np.linspace(0, 1.7, joints)[:, None]
  return (base + 0.01 * rng.normal(size=(n_frames, joints, 3))).astype(np.float32)


def test_sampler_api(diffusion_run, labelled_run):
  plain = runs.Run(diffusion_run[0]).sampler()
  with pytest.raises(ValueError, match='trained without labels'):
    plain.sample_codes(2, jax.random.key(0), 'diffusion', observation=_observation(), label=1)
  d = runs.Run(labelled_run).load_diffusion()
  assert d.behavior.step == 20 and d.step == 10
  sampler = d.sampler()
  z_dim = d.behavior.config.model.width
  obs = _observation()
  z = sampler.sample_codes(6, jax.random.key(0), 'diffusion', observation=obs)
  assert z.shape == (6, z_dim) and np.all(np.isfinite(z))
  zb = sampler.sample_codes(6, jax.random.key(0), 'diffusion', observation=np.stack([obs] * 2),
                            label=[1, 2], guidance=2.0)
  assert zb.shape == (2, 6, z_dim)
  # The DDIM chain is deterministic given the key; guidance changes it.
  again = sampler.sample_codes(6, jax.random.key(0), 'diffusion', observation=obs)
  np.testing.assert_array_equal(z, again)
  guided = sampler.sample_codes(6, jax.random.key(0), 'diffusion', observation=obs, label=1,
                                guidance=3.0)
  assert not np.allclose(z, guided)
  futures = sampler.predict(obs, 6, jax.random.key(2), label=0)  # same shapes: no recompile
  assert futures.shape == (6, d.behavior.config.data.seq_len + 1, 17, 3)
  np.testing.assert_allclose(futures[:, 0], np.repeat(obs[-1:], 6, axis=0), atol=1e-5)


@pytest.mark.parametrize('kwargs,match', [
    (dict(observation=_observation(n_frames=10)), r'expected \(25, 17, 3\)'),
    (dict(observation=_observation(joints=16)), r'expected \(25, 17, 3\)'),
    (dict(observation=_observation(), label=10), r'label=10: must be integer class ids in \[0, 10\)'),
    (dict(observation=_observation(), label=-1), r'in \[0, 10\)'),
    (dict(), 'needs observation='),
])
def test_bad_inputs_are_clear_errors(labelled_run, kwargs, match):
  sampler = runs.Run(labelled_run).sampler()
  with pytest.raises(ValueError, match=match):
    sampler.sample_codes(2, jax.random.key(0), 'diffusion', **kwargs)


def test_missing_behavior_run_is_a_clear_error(diffusion_run, tmp_path):
  workdir = str(tmp_path / 'diffusion')
  shutil.copytree(diffusion_run[0], workdir)
  with open(os.path.join(workdir, 'config.json')) as f:
    config = json.load(f)
  config['behavior_workdir'] = str(tmp_path / 'gone')
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    json.dump(config, f)
  with pytest.raises(FileNotFoundError, match='over the behavior run .*gone, which holds no run'):
    runs.Run(workdir).load_diffusion()
  with pytest.raises(errors.ConfigError, match='behavior_workdir is required'):
    diffusion_trainer.train_and_evaluate(diffusion_config.get_config('smoke'), workdir)
  bad = _smoke(diffusion_run[0])
  bad.loss.k = 0
  with pytest.raises(errors.ConfigError, match=r'--config.loss.k=0: must be an integer >= 1'):
    diffusion_trainer.train_and_evaluate(bad, str(tmp_path / 'bad'))
  with pytest.raises(errors.ConfigError, match='no behavior run there'):
    diffusion_trainer.train_and_evaluate(_smoke(str(tmp_path / 'gone')), str(tmp_path / 'new'))


def test_hmp_and_guidance_suites(behavior_workdir, diffusion_run, labelled_run, tmp_path):
  from bds_jax.evaluation import common, context, hmp as hmp_eval  # pylint: disable=g-import-not-at-top
  from bds_jax.evaluation import guidance as guidance_suite  # pylint: disable=g-import-not-at-top
  from bds_jax.evaluation import hmp as hmp_suite  # pylint: disable=g-import-not-at-top
  from configs import evaluate as eval_configs  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / 'behavior'
  shutil.copytree(behavior_workdir, workdir)
  shutil.copytree(diffusion_run[0], workdir / 'diffusion')  # where evaluation looks for them
  ec = eval_configs.get_config('smoke')
  ec.hmp.max_windows = 8
  ctx = context.load(str(workdir), ec)
  assert ctx.diffusion is not None and ctx.diffusion.step == 30
  # Without an action-conditioned prior, guidance says how to train one.
  assert common.collect(common.get('guidance'), ctx, seed=0,
                        **ec.guidance.to_dict()) == {'skipped': guidance_suite.SKIPPED}
  hmp = common.collect(common.get('hmp'), ctx, seed=0, **ec.hmp.to_dict())
  assert 'gaussian' in hmp and 'diffusion' in hmp
  for prior in ('gaussian', 'diffusion'):
    assert np.isfinite(hmp[prior]['ADE']) and hmp[prior]['APD'] > 0
  assert hmp['oracle_code']['ADE'] > 0  # smoke: 10 frames at lag 4 fit in the 100 predicted
  assert hmp['diffusion_prior'].startswith('observation-only')
  table = hmp_eval.table({'ours': hmp}, 'synthetic_motion')
  assert "| ours | diffusion: observation-only (BeLFusion's setting) |" in table
  assert '| CoMusion (published, Human3.6M) |' in table
  assert '| SLD (published, Human3.6M; ECCV\'24; second-hand; DLow/GSPS windows' in table
  assert '| KinemaDiff (published' in table and '| Gaussian-Mixture Latent Flow (published' in table
  assert "oracle: the true future's own code" in table
  # The protocol differences, each a short line, with the ones this run has.
  assert 'Differences from the published protocol:' in table
  assert '- 8 of the ' in table and '- predicted at 12.5 Hz, resampled linearly to 50 Hz' in table
  assert '- no FID (no hmp.classifier_checkpoint)' in table
  assert "The diffusion row's model beside BeLFusion's:" in table
  assert all(len(d) < 100 for d in hmp['protocol_differences'] + hmp['recipe_differences'])
  assert hmp_suite.diffusion_prior_kind(10).startswith('action-conditioned (10 classes), '
                                                       'sampled with the null label')
  # The action-conditioned prior, in diffusion_labels/, has the guidance suite's row.
  shutil.copytree(labelled_run, workdir / 'diffusion_labels')
  guided = common.collect(common.get('guidance'), ctx, seed=0, **ec.guidance.to_dict())
  assert guided['prior'].startswith('action-conditioned diffusion prior (')
  assert guided['prior'].endswith('diffusion_labels)')
  assert guided['num_windows'] == ec.guidance.num_windows
  assert set(guided['recognised_requested']) == {'unguided', 'guidance_1', 'guidance_2'}
  assert all(0 <= v <= 1 for v in guided['recognised_requested'].values())


# ---------------------------------------------------------------------- synthesize.py predict
@pytest.fixture(scope='module')
def predict_run(behavior_workdir, diffusion_run, labelled_run, tmp_path_factory):
  """The smoke behavior run with both diffusion priors where synthesize.py looks for them."""
  path = str(tmp_path_factory.mktemp('predict') / 'run')
  shutil.copytree(behavior_workdir, path, ignore=shutil.ignore_patterns('train.lock'))
  shutil.copytree(diffusion_run[0], os.path.join(path, 'diffusion'))
  shutil.copytree(labelled_run, os.path.join(path, 'diffusion_labels'))
  return path


def test_synthesize_predict(predict_run, tmp_path):
  from bds_jax import procedural  # pylint: disable=g-import-not-at-top
  from bds_jax.synthesis import commands  # pylint: disable=g-import-not-at-top
  d = runs.Run(predict_run).config.data
  seen = 25 // d.frame_lag + 1  # the observation's frames at the model's rate
  entry = commands.run('predict', workdir=predict_run, samples=6, num=2)
  stats = entry['stats']
  assert stats['prior'] == 'diffusion' and stats['K'] == 6
  assert stats['observed frames (50 Hz)'] == 25
  assert stats['predicted frames (50 Hz)'] == d.seq_len * d.frame_lag
  assert stats['APD (m)'] > 0 and stats['best-of-K ADE (m)'] > 0  # a window: the truth known
  out = os.path.join(predict_run, 'synthesis')
  assert entry['frames'] == seen - 1 + d.seq_len + 1
  assert entry['size'][0] == pytest.approx(260 * 3, abs=2)  # the truth and 2 futures
  endpoints = os.path.join(out, entry['images'][0])
  assert os.path.getsize(endpoints) > 20_000
  assert 'predict_endpoints.png' in open(report_page.write(predict_run)).read()

  # A user's clip (this project's .npy, at the model's rate), asked for a class.
  clip = procedural.render('S9', 'standing', 'squat', 1, 2, 100)[::d.frame_lag]
  np.save(tmp_path / 'clip.npy', clip)
  entry = commands.run('predict', workdir=predict_run, source=str(tmp_path / 'clip.npy'),
                       samples=4, num=1, label='1', guidance=2.0, name='asked')
  assert entry['stats']['class asked for'] and entry['stats']['guidance scale'] == 2.0
  assert 'best-of-K ADE (m)' not in entry['stats']  # no truth for a file
  assert entry['size'][0] == pytest.approx(260, abs=2)

  for kw, match in [(dict(prior='flow'), r'no flow prior in flow/'),
                    (dict(label='no_such_class'), r"--label='no_such_class': not a class"),
                    (dict(source='test:0'), r'fewer than the 25 observed frames'),
                    (dict(prior='banana'), r'--prior=.banana. must be')]:
    with pytest.raises(errors.InputError, match=match):
      commands.run('predict', workdir=predict_run, samples=2, **kw)
  with pytest.raises(errors.InputError, match=r'transfer takes no option --label; its options'):
    commands.run('transfer', workdir=predict_run, label='1')
