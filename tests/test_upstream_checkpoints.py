"""Reading the authors' PyTorch checkpoints: safe .pth reading and an exact parameter mapping."""

import copy
import os
import pickle
import zipfile

from flax import nnx
import jax.numpy as jnp
import numpy as np
import pytest

from bds_jax.models import behavior as behavior_model
from bds_jax.models import flow as flow_model
from bds_jax.upstream import mapping
from bds_jax.upstream import pth

torch = pytest.importorskip('torch')
import upstream_torch  # pylint: disable=g-import-not-at-top,wrong-import-position

WIDTH, FLOW_DIM, FLOW_BLOCKS, FLOW_WIDTH = 24, 24, 3, 32  # the flow models the codes


def _rel_close(a, b, rtol=1e-4):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  assert np.max(np.abs(a - b)) <= rtol * np.max(np.abs(b)), np.max(np.abs(a - b))


@pytest.fixture(scope='module')
def upstream_files(tmp_path_factory):
  torch.manual_seed(0)
  d = tmp_path_factory.mktemp('upstream')
  net = upstream_torch.randomize(upstream_torch.ResidualBehaviorNet(51, WIDTH), 1).eval()
  flow = upstream_torch.randomize(
      upstream_torch.UnsupervisedTransformer2(FLOW_DIM, FLOW_BLOCKS, FLOW_WIDTH, 2), 2, 0.1)
  torch.save(net.state_dict(), d / 'reg_ckpt_model_7.pth')
  torch.save(flow.state_dict(), d / 'flow_ckpt_model_3.pth')
  return net, flow, str(d / 'reg_ckpt_model_7.pth'), str(d / 'flow_ckpt_model_3.pth')


@pytest.mark.parametrize('use_torch', [False, True])
def test_state_dicts_read_exactly(upstream_files, use_torch):
  net, flow, net_path, flow_path = upstream_files
  for module, path in ((net, net_path), (flow, flow_path)):
    sd = pth.load_state_dict(path, use_torch=use_torch)
    want = module.state_dict()
    assert list(sd) == list(want)
    for k, v in want.items():
      np.testing.assert_array_equal(sd[k], v.numpy(), err_msg=k)


def test_behavior_model_matches_pytorch(upstream_files):
  net, _, path, _ = upstream_files
  ours = behavior_model.BehaviorModel(51, WIDTH, nnx.Rngs(0))
  mapping.assign(ours, mapping.behavior_arrays(pth.load_state_dict(path, use_torch=False), path))
  x = np.random.default_rng(0).normal(size=(3, 10, 51)).astype(np.float32)  # upstream order
  with torch.no_grad():
    mu_t, logstd_t = net.b_enc(torch.from_numpy(x))
    seq_t = net.decoder(mu_t, torch.from_numpy(x[:, 0]), 12).numpy()
  mu, logstd = ours.posterior(jnp.asarray(x[..., mapping.POSE_INDEX]))
  _rel_close(mu, mu_t.numpy())
  _rel_close(logstd, logstd_t.numpy())
  seq = ours.decode(mu, jnp.asarray(x[:, 0, mapping.POSE_INDEX]), 12)
  _rel_close(seq, seq_t[..., mapping.POSE_INDEX])


def test_flow_matches_pytorch(upstream_files):
  _, flow, _, path = upstream_files
  sd = pth.load_state_dict(path, use_torch=False)
  shape = mapping.flow_shape(sd)
  assert (shape['dim'], shape['num_blocks'], shape['width'], shape['num_layers']) == (
      FLOW_DIM, FLOW_BLOCKS, FLOW_WIDTH, 4)
  ours = flow_model.FlowPrior(FLOW_DIM, FLOW_BLOCKS, FLOW_WIDTH, 4, nnx.Rngs(0), seed=5)
  mapping.assign(ours, mapping.flow_arrays(sd, path))
  z = np.random.default_rng(1).normal(size=(5, FLOW_DIM)).astype(np.float32)
  with torch.no_grad():
    u_t, logdet_t = flow(torch.from_numpy(z))
  u, logdet = ours.forward(jnp.asarray(z))
  _rel_close(u, u_t.numpy())
  _rel_close(logdet, logdet_t.numpy())
  _rel_close(ours.inverse(u)[0], z, rtol=1e-3)


def test_joint_reordering_is_a_permutation():
  assert sorted(mapping.POSE_INDEX.tolist()) == list(range(51))
  # Our pelvis (joint 0) comes from upstream's joint 6 (its "spine", 0.1 mm above the root).
  assert mapping.POSE_INDEX[:3].tolist() == [18, 19, 20]


class _Evil:

  def __reduce__(self):
    return (os.system, ('echo pwned > /dev/null',))


def test_a_pickle_that_calls_code_is_refused(tmp_path):
  path = tmp_path / 'evil.pth'
  with zipfile.ZipFile(path, 'w') as z:
    z.writestr('archive/data.pkl', pickle.dumps({'w': _Evil()}, protocol=2))
    z.writestr('archive/version', '3\n')
  for use_torch in (False, True):
    with pytest.raises(pth.UnsafePickleError, match='evil.pth'):
      pth.load_state_dict(str(path), use_torch=use_torch)


def _ignite(net):
  """What upstream's ignite ModelCheckpoint saves: the model's and the optimizer's state.

  Works on a copy: the step below must not move the shared fixture's weights."""
  net = copy.deepcopy(net)
  opt = torch.optim.Adam(net.parameters(), lr=1e-3)
  sum(p.sum() for p in net.parameters()).backward()
  opt.step()  # the optimizer state then holds tensors too
  return {'model': net.state_dict(), 'optimizer': opt.state_dict()}


@pytest.mark.parametrize('legacy', [True, False])
def test_ignite_checkpoints_in_both_serialisations(upstream_files, tmp_path, legacy, caplog):
  net = upstream_files[0]
  path = tmp_path / 'reg_ckpt_checkpoint_7.pth'
  # PyTorch 1.3, which upstream used, wrote the legacy (non-zip) format.
  ckpt = _ignite(net)
  torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)
  assert zipfile.is_zipfile(path) != legacy
  want = ckpt['model']
  for use_torch in (False, True):
    with caplog.at_level('INFO'):
      sd = pth.load_state_dict(str(path), use_torch=use_torch)
    assert list(sd) == list(want)
    for k, v in want.items():
      np.testing.assert_array_equal(sd[k], v.numpy(), err_msg=k)
    assert 'ignored: optimizer' in caplog.text
  if legacy:  # a state dict saved plainly in the legacy format too
    torch.save(want, tmp_path / 'plain.pth', _use_new_zipfile_serialization=False)
    sd = pth.load_state_dict(str(tmp_path / 'plain.pth'), use_torch=False)
    np.testing.assert_array_equal(sd['decoder.n_out.bias'], want['decoder.n_out.bias'].numpy())
    # Cut off inside the storages: the file is named, nothing crashes.
    data = path.read_bytes()
    (tmp_path / 'cut.pth').write_bytes(data[:len(data) - 100])
    with pytest.raises(ValueError, match='cut.pth.*truncated'):
      pth.load_state_dict(str(tmp_path / 'cut.pth'), use_torch=False)


def test_a_legacy_pickle_that_calls_code_is_refused(tmp_path):
  path = tmp_path / 'evil_legacy.pth'
  path.write_bytes(b''.join(pickle.dumps(x, protocol=2) for x in (
      pth.LEGACY_MAGIC, pth.LEGACY_PROTOCOL, {'little_endian': True},
      {'model': {'w': _Evil()}, 'optimizer': {}}, [])))
  for use_torch in (False, True):
    with pytest.raises(pth.UnsafePickleError, match='evil_legacy.pth'):
      pth.load_state_dict(str(path), use_torch=use_torch)


def test_wrong_files_are_clear_errors(upstream_files, tmp_path):
  _, _, net_path, flow_path = upstream_files
  with pytest.raises(FileNotFoundError, match='missing.pth'):
    pth.load_state_dict(str(tmp_path / 'missing.pth'))
  (tmp_path / 'legacy.pth').write_bytes(b'\x80\x02not a zip')
  with pytest.raises(ValueError, match='legacy.pth: cannot read this PyTorch file'):
    pth.load_state_dict(str(tmp_path / 'legacy.pth'), use_torch=False)
  with pytest.raises(ValueError, match='is this the flow'):
    mapping.flow_arrays(pth.load_state_dict(net_path, use_torch=False), net_path)
  sd = pth.load_state_dict(net_path, use_torch=False)
  sd['decoder.n_out.bias'] = sd['decoder.n_out.bias'][:50]
  sd['b_enc.extra'] = np.zeros(3, np.float32)
  del sd['b_enc.mu_fn.beta']
  with pytest.raises(ValueError) as err:
    mapping.behavior_arrays(sd, net_path)
  msg = str(err.value)
  assert 'decoder.n_out.bias has shape (50,), expected (51,)' in msg
  assert 'missing b_enc.mu_fn.beta' in msg and 'unexpected key b_enc.extra' in msg
  ours = behavior_model.BehaviorModel(51, WIDTH + 1, nnx.Rngs(0))
  arrays = mapping.behavior_arrays(pth.load_state_dict(net_path, use_torch=False))
  with pytest.raises(ValueError, match='encoder.lstm.w: ours'):
    mapping.assign(ours, arrays)
  del flow_path


def test_converted_run_loads_evaluates_and_samples(upstream_files, tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  from bds_jax import runs  # pylint: disable=g-import-not-at-top
  net, flow, net_path, flow_path = upstream_files
  rng = np.random.default_rng(3)
  mean, std = rng.normal(size=51), rng.uniform(0.5, 2.0, size=51)  # upstream joint order
  np.savez(tmp_path / 'stats.npz', mean=mean, std=std)
  (tmp_path / 'config.yaml').write_text(
      f'architecture:\n  dim_hidden_b: {WIDTH}\ndata:\n  seq_length: [50, 51]\n'
      '  sequential_frame_lag: 2\n')
  out = tmp_path / 'converted'
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  # A (tiny, 32 px) appearance VUnet of upstream's Market run converts in the same command;
  # its mapping is checked against PyTorch in test_upstream_vunet.py.
  (tmp_path / 'vunet').mkdir()
  vunet_path = tmp_path / 'vunet' / 'reg_ckpt_model_9.pth'
  torch.save({'model': upstream_torch.VunetAlter(32, 2, 1, 30, 4, 8).state_dict()}, vunet_path)
  tiny = ['--appearance_config.model.image_size=32',
          '--appearance_config.model.bottleneck_factor=2']
  done = subprocess.run(
      [sys.executable, '-m', 'bds_jax.convert_upstream', f'--model={net_path}',
       f'--flow={flow_path}', f'--normalization={tmp_path / "stats.npz"}',
       f'--config_yaml={tmp_path / "config.yaml"}', f'--vunet={vunet_path}',
       f'--appearance_config={root}/configs/appearance.py:market', *tiny, f'--out={out}'],
      cwd=root, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  assert f'--config.model.width={WIDTH}' in done.stdout
  _check_converted_appearance(out / 'appearance', done.stdout)
  run = runs.Run(str(out))
  behavior = run.load_behavior()
  assert behavior.step == 7 and behavior.config.model.width == WIDTH
  np.testing.assert_allclose(behavior.normalizer.mean, mean[mapping.POSE_INDEX], rtol=1e-6)
  poses = rng.normal(size=(2, 10, 17, 3)).astype(np.float32)  # metres, our joint order
  x = behavior.normalizer.normalize(poses)
  upstream_x = (poses.reshape(2, 10, 51)[..., np.argsort(mapping.POSE_INDEX)] - mean) / std
  with torch.no_grad():
    mu_t, _ = net.b_enc(torch.from_numpy(upstream_x.astype(np.float32)))
  mu, _ = behavior.model().posterior(jnp.asarray(x))
  _rel_close(mu, mu_t.numpy())
  loaded_flow = run.load_flow()
  with torch.no_grad():
    u_t, _ = flow(mu_t)
  u, _ = loaded_flow.flow().forward(mu)
  _rel_close(u, u_t.numpy())
  sampler = run.sampler()
  z = sampler.sample_codes(3, jax.random.key(0), prior='flow')
  assert np.asarray(sampler.decode(z, poses[:3, 0] if len(poses) >= 3 else
                                   np.repeat(poses[:1, 0], 3, 0))).shape[:2] == (3, 51)
  from configs import behavior as behavior_configs  # pylint: disable=g-import-not-at-top
  from bds_jax import convert_upstream  # pylint: disable=g-import-not-at-top
  with pytest.raises(FileExistsError, match='new --out'):
    convert_upstream.convert(net_path, str(out), behavior_configs.get_config('h36m'),
                             behavior.normalizer)


def _check_converted_appearance(path, stdout: str):
  """The appearance run the command wrote: loadable, upstream's crops, and the evaluate.py
  flags it printed match the run as evaluate.py checks them."""
  from bds_jax import convert_upstream  # pylint: disable=g-import-not-at-top
  from bds_jax import kinds  # pylint: disable=g-import-not-at-top
  from bds_jax import runs  # pylint: disable=g-import-not-at-top
  run = runs.Run(str(path))
  loaded = run.load_appearance()
  assert loaded.step == 9 and run.config.data.crop_geometry == 'upstream'
  assert 'adversary is untrained' in stdout and 'synthesize.py video' in stdout
  line = next(l for l in stdout.splitlines() if f'--workdir={run.path}' in l and 'appearance' in l)
  given = convert_upstream.appearance_preset_config('market')
  for flag in line.split():
    if flag.startswith('--config.'):
      field, value = flag[len('--config.'):].split('=')
      *parents, leaf = field.split('.')
      node = given
      for p in parents:
        node = node[p]
      node[leaf] = type(node[leaf])(value)
  kinds.check_given_config(given, run.config, run.path)  # evaluate.py would accept the flags
