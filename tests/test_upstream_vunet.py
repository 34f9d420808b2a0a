"""Converting the authors' appearance VUnet and its adversary: exact mapping, the run, errors.

Upstream's `VunetAlter` and `Regressor` are rebuilt in PyTorch from the spec at a tiny size
(tests/upstream_torch.py: 32 px, 4-8 channels, Market's 30-channel part-crop input), given
random weights, saved as upstream's ignite checkpoints in both serialisations and converted.
"""

import jax
import numpy as np
import pytest
from flax import nnx

from bds_jax import convert_upstream
from bds_jax import runs
from bds_jax import skeleton
from bds_jax.models import build
from bds_jax.upstream import pth
from bds_jax.upstream import vunet_mapping

torch = pytest.importorskip('torch')
import upstream_torch  # pylint: disable=g-import-not-at-top,wrong-import-position

# 4 posture scales (32 ... 4 px), 3 appearance scales (16 ... 4 px), latents 4x4 and 8x8.
SIZE, BOTTLENECK, BOX, NF_START, NF_MAX = 32, 2, 1, 4, 8
LATENT_WIDTHS = (8, 4)  # the adversary's kernels, finest latent first (upstream's order)
CONV_CHANNELS, HIDDEN, KEYPOINTS = 8, 16, 18
STEP = 1200


def tiny_config(preset='market'):
  c = convert_upstream.appearance_preset_config(preset)
  c.model.image_size, c.model.bottleneck_factor, c.data.box_factor = SIZE, BOTTLENECK, BOX
  return c


def ignite(module, gamma=None):
  """Upstream's ignite checkpoint {'model', 'optimizer'}; the optimizer state holds tensors
  (one Adam step at learning rate 0: the weights stay) and, for the VUnet, the KL weight."""
  params = list(module.parameters())
  opt = torch.optim.Adam(params, lr=0.0)
  for p in params:
    p.grad = torch.ones_like(p)
  opt.step()
  for p in params:
    p.grad = None
  if gamma is not None:
    opt.param_groups[0]['gamma'] = gamma
  return {'model': module.state_dict(), 'optimizer': opt.state_dict()}


@pytest.fixture(scope='module')
def upstream(tmp_path_factory):
  """The PyTorch modules and {'legacy' | 'zip': (vunet path, regressor path)}."""
  d = tmp_path_factory.mktemp('upstream_vunet')
  torch.manual_seed(0)
  # Small weight-norm gains: the residual stacks would otherwise grow the activations ~2x per
  # block, and the comparison should test the mapping, not float32 range.
  net = upstream_torch.randomize(
      upstream_torch.VunetAlter(SIZE, BOTTLENECK, BOX, 30, NF_START, NF_MAX), 3,
      gains=(0.3, 0.7)).eval()
  reg = upstream_torch.randomize(
      upstream_torch.Regressor(LATENT_WIDTHS, NF_MAX, CONV_CHANNELS, HIDDEN, 2 * KEYPOINTS),
      4).eval()
  files = {}
  for kind in ('legacy', 'zip'):  # PyTorch 1.3, which upstream used, wrote the legacy format
    (d / kind).mkdir()
    paths = (d / kind / f'reg_ckpt_model_{STEP}.pth', d / kind / f'regressor_model_{STEP}.pth')
    for path, ckpt in zip(paths, (ignite(net, gamma=0.25), ignite(reg))):
      torch.save(ckpt, path, _use_new_zipfile_serialization=kind == 'zip')
    files[kind] = tuple(map(str, paths))
  return net, reg, files


def _rel_err(a, b) -> float:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def test_converted_vunet_matches_pytorch(upstream, tmp_path):
  net, reg, files = upstream
  loaded = {}
  for kind, (vunet_path, reg_path) in files.items():
    run = convert_upstream.convert_appearance(vunet_path, str(tmp_path / kind), tiny_config(),
                                              reg_path)
    loaded[kind] = runs.Run(run.path).load_appearance()
  a = loaded['legacy']
  c = a.run.config
  assert a.step == STEP and c.trainer == 'appearance' and c.data.name == 'market1501'
  assert (c.model.nf_start, c.model.nf_max, c.model.regressor_hidden) == (NF_START, NF_MAX,
                                                                          HIDDEN)
  assert c.data.crop_geometry == 'upstream' and c.model.logstd_range == (0.0, 1.0)
  for tree in ('params', 'reg_params'):  # both serialisations give the same run
    jax.tree.map(np.testing.assert_array_equal, getattr(a, tree), getattr(loaded['zip'], tree))

  rng = np.random.default_rng(0)
  x = rng.uniform(-1, 1, (2, SIZE // 2**BOX, SIZE // 2**BOX, 30)).astype(np.float32)
  stick = rng.uniform(-1, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
  with torch.no_grad():  # eval mode: no dropout; the posterior means feed forward
    image_t, means_t, logstds_t = net(torch.from_numpy(x.transpose(0, 3, 1, 2)),
                                      torch.from_numpy(stick.transpose(0, 3, 1, 2)))
    keypoints_t = reg(means_t).numpy()

  @jax.jit
  def forward(params, reg_params, x, stick):
    image, means, logstds = nnx.merge(a.model_def, params)(x, stick)  # no key: means, no dropout
    return image, means, logstds, nnx.merge(a.reg_def, reg_params)(means)

  image, means, logstds, keypoints = forward(a.params, a.reg_params, x, stick)
  nhwc = lambda t: t.numpy().transpose(0, 2, 3, 1)
  errors = [_rel_err(image, nhwc(image_t))]
  errors += [_rel_err(m, nhwc(t)) for m, t in zip(means, means_t)]
  errors += [_rel_err(s, nhwc(t)) for s, t in zip(logstds, logstds_t)]
  errors.append(_rel_err(np.asarray(keypoints).reshape(2, -1), keypoints_t))
  assert max(errors) < 1e-4, errors
  assert np.asarray(image).std() > 0.1  # a real signal, not a collapsed output


def test_h36m_adversary_rows_follow_our_joint_order():
  reg = upstream_torch.randomize(upstream_torch.Regressor(LATENT_WIDTHS, NF_MAX, CONV_CHANNELS,
                                                          HIDDEN, 34), 5)
  sd = {k: v.numpy() for k, v in reg.state_dict().items()}
  config = tiny_config('h36m')
  config.model.nf_start, config.model.nf_max = NF_START, NF_MAX
  config.model.regressor_channels, config.model.regressor_hidden = CONV_CHANNELS, HIDDEN
  ours = build.abstract_appearance(config)[3]  # shapes only
  out = vunet_mapping.regressor_arrays(sd, ours, skeleton.UPSTREAM_TO_OURS)
  theirs = sd['linears.1.bias'].reshape(17, 2)
  np.testing.assert_array_equal(out['head.bias'].reshape(17, 2),
                                theirs[list(skeleton.UPSTREAM_TO_OURS)])
  # Our bottleneck conv is upstream's last embedder; its features come last upstream.
  np.testing.assert_array_equal(out['convs.0.kernel'],
                                sd['embedders.1.weight'].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(out['hidden.kernel'][:CONV_CHANNELS],
                                sd['linears.0.weight'][:, CONV_CHANNELS:].T)


def test_wrong_vunet_files_are_clear_errors(upstream, tmp_path):
  _, _, files = upstream
  vunet_path, reg_path = files['zip']
  sd = pth.load_state_dict(vunet_path)
  shape = vunet_mapping.vunet_shape(sd, vunet_path)
  assert shape == {'appearance_channels': 30, 'pose_channels': 3, 'nf_start': NF_START,
                   'nf_max': NF_MAX, 'n_scales': 4, 'n_app_scales': 3, 'n_latent': 2}
  # A missing, a mis-shaped and an unknown tensor: one error naming the file and each key.
  broken = dict(sd)
  del broken['dd.out_conv.gamma']
  broken['eu.blocks.0.conv.conv.bias'] = np.zeros(5, np.float32)
  broken['eu.extra'] = np.zeros(2, np.float32)
  torch.save({k: torch.from_numpy(v) for k, v in broken.items()}, tmp_path / 'broken.pth')
  with pytest.raises(ValueError) as err:
    convert_upstream.convert_appearance(str(tmp_path / 'broken.pth'), str(tmp_path / 'out'),
                                        tiny_config())
  msg = str(err.value)
  assert 'broken.pth is not an upstream VunetAlter state dict' in msg
  assert 'missing dd.out_conv.gamma (expected shape (1, 3, 1, 1))' in msg
  assert 'eu.blocks.0.conv.conv.bias has shape (5,), expected (4,)' in msg
  assert 'unexpected key eu.extra' in msg
  assert not (tmp_path / 'out').exists()  # nothing written
  # Not a VUnet at all, or upstream's other VUnet.
  with pytest.raises(ValueError, match='reg.pth: no eu.nin.conv.weight_v; is this the '
                     'appearance VUnet'):
    vunet_mapping.vunet_shape(pth.load_state_dict(reg_path), 'reg.pth')
  with pytest.raises(ValueError, match='VunetOrg'):
    vunet_mapping.vunet_shape({**sd, 'dd.latent_nins.l_0.conv.bias': sd['dd.nin.conv.bias']})
  with pytest.raises(ValueError, match='is this the appearance adversary'):
    vunet_mapping.regressor_shape(sd, 'vunet.pth')
  # Sizes that fit no preset, or not the given one.
  with pytest.raises(ValueError, match='match no preset.*--appearance_config'):
    convert_upstream.appearance_config(shape, None, 'v.pth')
  with pytest.raises(ValueError, match=r'v.pth does not fit.*30 appearance input channels, but '
                     r'data.inplane_normalize=False'):
    convert_upstream.appearance_config(shape, tiny_config('h36m'), 'v.pth')
  # An adversary of another dataset (17 keypoints against Market's 18).
  other = upstream_torch.Regressor(LATENT_WIDTHS, NF_MAX, CONV_CHANNELS, HIDDEN, 34)
  torch.save(ignite(other), tmp_path / 'regressor_model_1.pth',
             _use_new_zipfile_serialization=False)
  with pytest.raises(ValueError, match='regressor_model_1.pth predicts 17 keypoints, but '
                     'market1501 has 18'):
    convert_upstream.convert_appearance(vunet_path, str(tmp_path / 'out'), tiny_config(),
                                        str(tmp_path / 'regressor_model_1.pth'))
