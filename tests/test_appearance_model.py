"""Appearance model (VUnet) and its losses: blocks, shapes, gradients, adversary, optimisation.

XLA:CPU compile time dominates, so the sizes are tiny (16x16 images, 2 scales, 4-8
channels), parameters are drawn with 'rbg' keys (their random bits compile much faster than
threefry's), and one jitted train step (likelihood, KL, adversary, Adam) serves several
tests. It uses the pixel L1 + SSIM likelihood: the VGG one is traced here and compiled, with
its gradient, in test_vgg.py. The paper-size presets are checked by tracing only.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from bds_jax.models import appearance as ap
from bds_jax.models import appearance_losses as al
from bds_jax.models import build
from bds_jax.models import discriminator
from bds_jax.models import vgg
from bds_jax.models import vunet_blocks as vb
from configs import appearance as appearance_config

S, B, J = 16, 2, 17
_RNG = np.random.default_rng(0)  # test data from NumPy: threefry draws are slow to compile
TINY = dict(image_size=S, bottleneck_factor=3, nf_start=4, nf_max=8)  # scales 16, 8


def _rngs(seed=0):
  return nnx.Rngs(jax.random.key(seed, impl='rbg'))


def _assert_all_grads(grads, where=''):
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    assert np.all(np.isfinite(g)), (where, path)
    assert np.abs(g).max() > 0, f'{where}: no gradient reaches {jax.tree_util.keystr(path)}'


# ---------------------------------------------------------------------------------- blocks


def test_norm_conv_starts_as_plain_conv_with_torch_padding():
  conv = vb.NormConv2d(3, 5, 3, _rngs(), stride=2)
  x = jnp.asarray(_RNG.standard_normal((1, 6, 6, 3)), jnp.float32)
  y = conv(x)
  assert y.shape == (1, 3, 3, 5)
  # PyTorch's padding=1 at stride 2: output (r, c) centred on input (2r, 2c).
  xp = np.pad(np.asarray(x), ((0, 0), (1, 1), (1, 1), (0, 0)))
  v, bias = np.asarray(conv.v[...]), np.asarray(conv.bias[...])
  for r, c in [(0, 0), (1, 2), (2, 2)]:
    patch = xp[0, 2 * r:2 * r + 3, 2 * c:2 * c + 3]
    np.testing.assert_allclose(y[0, r, c], np.einsum('hwi,hwio->o', patch, v) + bias,
                               rtol=1e-4, atol=1e-5)
  conv.v[...] = 2.5 * conv.v[...]  # weight norm: only v's direction matters
  np.testing.assert_allclose(conv(x), y, rtol=1e-5, atol=1e-5)
  conv.gamma[...] = 2.0 * conv.gamma[...]
  conv.beta[...] = conv.beta[...] + 1.0
  np.testing.assert_allclose(conv(x), 2.0 * y + 1.0, rtol=1e-5, atol=1e-5)


def test_depth_to_space_orders_hand_computed():
  x = jnp.arange(8.0).reshape(1, 1, 1, 8)  # 2x2 block, 2 output channels
  # TF / upstream (DCR): pixel (i, j) takes channels (2i + j)·2 + c.
  np.testing.assert_array_equal(vb.depth_to_space(x, 2, 'DCR')[0],
                                [[[0, 1], [2, 3]], [[4, 5], [6, 7]]])
  # PyTorch pixel_shuffle (CRD): pixel (i, j) takes channels 4c + 2i + j.
  np.testing.assert_array_equal(vb.depth_to_space(x, 2, 'CRD')[0],
                                [[[0, 4], [1, 5]], [[2, 6], [3, 7]]])
  # Spatial interleaving: 1x2 input pixels with 1 channel -> a 2x4 image.
  x = jnp.array([[10., 11., 12., 13.], [20., 21., 22., 23.]]).reshape(1, 1, 2, 4)
  np.testing.assert_array_equal(vb.depth_to_space(x, 2, 'DCR')[0, ..., 0],
                                [[10, 11, 20, 21], [12, 13, 22, 23]])
  with pytest.raises(ValueError, match='order'):
    vb.depth_to_space(x, 2, 'XYZ')


def test_crd_order_is_torch_pixel_shuffle():
  torch = pytest.importorskip('torch')
  x = np.random.default_rng(0).standard_normal((2, 3, 4, 12)).astype(np.float32)
  ref = torch.nn.functional.pixel_shuffle(torch.from_numpy(x.transpose(0, 3, 1, 2)), 2)
  np.testing.assert_array_equal(vb.depth_to_space(jnp.asarray(x), 2, 'CRD'),
                                ref.numpy().transpose(0, 2, 3, 1))


def _traced(build, *args, **kwargs):
  """Output of a module built by `build()` on abstract inputs, traced only (no compile)."""
  graphdef, state = nnx.split(nnx.eval_shape(build))
  return jax.eval_shape(lambda s, *a: nnx.merge(graphdef, s)(*a, **kwargs), state, *args)


def test_block_shapes():
  # Traced only; gradients of every block are checked inside the full model below.
  x = jax.ShapeDtypeStruct((2, 4, 4, 4), jnp.float32)
  a = jax.ShapeDtypeStruct((2, 4, 4, 3), jnp.float32)
  shape = lambda build, *args, **kw: _traced(build, *args, **kw).shape
  assert shape(lambda: vb.NormConv2d(4, 6, 3, nnx.Rngs(0)), x) == (2, 4, 4, 6)
  assert shape(lambda: vb.ResBlock(4, nnx.Rngs(0)), x, key=jax.random.key(3)) == (2, 4, 4, 4)
  res_skip = lambda: vb.ResBlock(4, nnx.Rngs(0), skip_channels=3)
  assert shape(res_skip, x, a) == (2, 4, 4, 4)
  assert shape(lambda: vb.Downsample(4, 8, nnx.Rngs(0)), x) == (2, 2, 2, 8)
  assert shape(lambda: vb.Upsample(4, 2, nnx.Rngs(0)), x) == (2, 8, 8, 2)
  reg = lambda: ap.KeypointRegressor(((2, 2, 4), (4, 4, 4)), 3, nnx.Rngs(0), 5, 6)
  assert shape(reg, [jax.ShapeDtypeStruct((2, 2, 2, 4), jnp.float32), x]) == (2, 3, 2)
  with pytest.raises(ValueError, match='skip'):
    _traced(res_skip, x)
  with pytest.raises(ValueError, match='input channels'):
    _traced(lambda: vb.NormConv2d(3, 6, 3, nnx.Rngs(0)), x)
  with pytest.raises(ValueError, match='regressor built for latents'):
    _traced(reg, [x, x])


def test_dropout_rate_and_scaling():
  x = jnp.ones((64, 64))
  y = vb.dropout(x, 0.05, jax.random.key(0, impl='rbg'))
  np.testing.assert_allclose(np.unique(np.asarray(y)), [0.0, 1 / 0.95], rtol=1e-6)
  assert 0.03 < float(jnp.mean(y == 0)) < 0.07
  np.testing.assert_array_equal(vb.dropout(x, 0.05, None), x)


def test_dropout_masks_are_independent():
  """The hashed masks: right rate, and no correlation between the masks of two keys of one
  KeyStream or between neighbouring elements (a joint drop rate of ~rate²)."""
  keys = vb.KeyStream(jax.random.key(3), 2)
  x = jnp.ones((4, 128, 128, 8))  # 524288 elements: the rates below are within ±6 sd
  a = np.asarray(vb.dropout(x, 0.05, keys.next()) == 0)
  b = np.asarray(vb.dropout(x, 0.05, keys.next()) == 0)
  assert 0.048 < a.mean() < 0.052 and 0.048 < b.mean() < 0.052
  for joint in ((a & b).mean(), (a[..., 1:] & a[..., :-1]).mean(),
                (a[:, 1:] & a[:, :-1]).mean(), (a[1:] & a[:-1]).mean()):
    assert 0.0022 < joint < 0.0028, joint


# ----------------------------------------------------------------------------------- model


@pytest.fixture(scope='module')
def tiny():
  """(model graphdef, params, regressor graphdef, regressor params, a batch)."""
  model = ap.AppearanceModel(_rngs(0), **TINY)
  reg = ap.KeypointRegressor(model.latent_shapes, J, _rngs(1), conv_channels=8, hidden=8)
  model_def, params = nnx.split(model)
  reg_def, reg_params = nnx.split(reg)
  rng = np.random.default_rng(7)
  image = jnp.asarray(np.tanh(rng.standard_normal((B, S, S, 3))), jnp.float32)
  batch = {'image': image, 'appearance': image,
           'stickman': jnp.asarray(np.where(rng.uniform(size=(B, S, S, 3)) > 0.8, 1.0, -1.0),
                                   jnp.float32),
           'appearance_keypoints': jnp.asarray(rng.uniform(size=(B, J, 2)),
                                               jnp.float32)}
  return model_def, nnx.to_pure_dict(params), reg_def, nnx.to_pure_dict(reg_params), batch


@pytest.fixture(scope='module')
def evaluated(tiny):
  """Eval-mode (no key) forward of the tiny batch: (image, means, logstds)."""
  model_def, params, _, _, batch = tiny
  fwd = jax.jit(lambda p: nnx.merge(model_def, p)(batch['appearance'], batch['stickman']))
  return fwd(params)


def test_forward_shapes_and_eval_mode(tiny, evaluated):
  model = nnx.merge(tiny[0], tiny[1])
  assert model.n_scales == 2
  assert model.latent_shapes == ((8, 8, 8), (16, 16, 4))
  image, means, logstds = evaluated
  assert image.shape == (B, S, S, 3) and image.dtype == jnp.float32
  assert [m.shape for m in means] == [(B, 8, 8, 8), (B, 16, 16, 4)]
  assert [s.shape for s in logstds] == [(B, 8, 8, 8), (B, 16, 16, 4)]
  for s in logstds:  # log sigma through a sigmoid: sigma in (1, e)
    assert 0.0 < float(s.min()) and float(s.max()) < 1.0
  z = model.prior_latents(jax.random.key(0, impl='rbg'), B)
  assert [x.shape for x in z] == [(B, 8, 8, 8), (B, 16, 16, 4)]


def _preset_model(preset: str):
  """The abstract model and regressor of configs/appearance.py:<preset> (the real build path)."""
  c = appearance_config.get_config(preset)
  return nnx.eval_shape(lambda: build.create_appearance(c, jax.random.key(0))), c


def test_paper_presets_trace():
  # The full-size forward, traced (no compile): 256 px, 7 scales, 4x4 and 8x8 latents.
  (model, reg), c = _preset_model('h36m')
  graphdef, state = nnx.split(model)
  assert model.n_scales == 7 and model.appearance_channels == 3 and not model.part_warp
  assert sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param))) == 13_368_620
  x = jax.ShapeDtypeStruct((1, 256, 256, 3), jnp.float32)
  out = jax.eval_shape(lambda s, a, c: nnx.merge(graphdef, s)(a, c, key=jax.random.key(0)),
                       state, x, x)
  assert out[0].shape == (1, 256, 256, 3)
  assert [m.shape for m in out[1]] == [(1, 4, 4, 128), (1, 8, 8, 128)]
  reg_graph, reg_state = nnx.split(reg)
  assert jax.eval_shape(lambda s, m: nnx.merge(reg_graph, s)(m), reg_state,
                        out[1]).shape == (1, c.model.num_keypoints, 2) == (1, 17, 2)
  # Upstream's regressor: kernel 4 on the 4x4 mean, 8 on the 8x8 one, 128 channels each.
  assert [conv.kernel.shape for conv in reg.convs] == [(4, 4, 128, 128), (8, 8, 128, 128)]
  # Market: 128 px, bottleneck factor 1, 64 px part crops -> 2x2 and 4x4 latents, 18 joints.
  (market, market_reg), _ = _preset_model('market')
  assert market.n_scales == 7 and market.appearance_size == 64
  assert market.appearance_channels == 30 and not market.part_warp
  assert market.latent_shapes == ((2, 2, 128), (4, 4, 128))
  assert market_reg.num_keypoints == 18
  (deepfashion, _), _ = _preset_model('deepfashion')
  assert deepfashion.appearance_size == 64 and deepfashion.latent_shapes[0] == (4, 4, 128)


def test_raw_logstd_option():
  enc = ap.LatentEncoder((4, 8), 2, _rngs(3), 0.05, sigmoid_logstd=False)
  skips = [jnp.full((1, 8, 8, 4), 3.0)] * 2 + [jnp.full((1, 4, 4, 8), 3.0)] * 2
  means, logstds, zs = enc(skips, vb.KeyStream(None, 0), sample=False)
  assert float(min(s.min() for s in logstds)) < 0.0  # not squashed into (0, 1)
  assert [z.shape for z in zs] == [(1, 4, 4, 8), (1, 8, 8, 4)]
  # Eval mode (no keys): the latents passed on, to the next scale and the decoder, are the means.
  for z, m in zip(zs, means):
    np.testing.assert_array_equal(z, m)


def test_logstd_range_bounds_sigma():
  skips = [jax.random.normal(jax.random.key(i), s) * 3.0 for i, s in enumerate(
      [(2, 8, 8, 4)] * 2 + [(2, 4, 4, 8)] * 2)]
  for lo, hi in ((0.0, 1.0), (-3.0, 0.0)):
    enc = ap.LatentEncoder((4, 8), 2, _rngs(3), 0.0, sigmoid_logstd=True, logstd_range=(lo, hi))
    _, logstds, _ = enc(skips, vb.KeyStream(None, 0), sample=False)
    flat = np.concatenate([np.asarray(s).ravel() for s in logstds])
    assert lo <= flat.min() and flat.max() <= hi
    assert flat.max() - flat.min() > 0.05 * (hi - lo)  # the range is used, not a constant
  with pytest.raises(ValueError, match=r'logstd_range=\(1\.0, 0\.0\)'):
    ap.LatentEncoder((4, 8), 2, _rngs(3), 0.0, sigmoid_logstd=True, logstd_range=(1.0, 0.0))


def test_inplane_appearance_input_shapes():
  # Part crops: 30 channels at S / 2^box_factor, one scale fewer, same latent sizes.
  model = nnx.eval_shape(lambda: ap.AppearanceModel(
      nnx.Rngs(0), appearance_channels=30, box_factor=1, image_size=32, bottleneck_factor=3,
      nf_start=4, nf_max=8))
  assert model.appearance_size == 16 and model.latent_shapes == ((8, 8, 8), (16, 16, 4))
  graphdef, state = nnx.split(model)
  fwd = lambda s, a, c: nnx.merge(graphdef, s)(a, c)
  image, means, _ = jax.eval_shape(fwd, state, jax.ShapeDtypeStruct((1, 16, 16, 30), jnp.float32),
                                   jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32))
  assert image.shape == (1, 32, 32, 3)
  assert [m.shape[1:] for m in means] == [(8, 8, 8), (16, 16, 4)]
  with pytest.raises(ValueError, match=r'appearance.*\(batch, 16, 16, 30\)'):
    jax.eval_shape(fwd, state, jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32),
                   jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32))


def test_bfloat16_compute_traces_with_float32_outputs():
  build = lambda: ap.AppearanceModel(nnx.Rngs(0), compute_dtype='bfloat16', **TINY)
  x = jax.ShapeDtypeStruct((1, S, S, 3), jnp.float32)
  image, means, logstds = _traced(build, x, x, key=jax.random.key(0))
  assert image.dtype == jnp.float32 and image.shape == (1, S, S, 3)
  params = nnx.state(nnx.eval_shape(build), nnx.Param)
  assert {p.dtype for p in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}


def test_size_errors():
  with pytest.raises(ValueError, match='power of two'):
    ap.AppearanceModel(nnx.Rngs(0), image_size=100)
  with pytest.raises(ValueError, match='n_latent_scales'):
    nnx.eval_shape(lambda: ap.AppearanceModel(nnx.Rngs(0), image_size=8, bottleneck_factor=3))
  with pytest.raises(ValueError, match='box_factor'):
    nnx.eval_shape(lambda: ap.AppearanceModel(nnx.Rngs(0), image_size=8, box_factor=4,
                                              appearance_channels=30))


def test_input_shape_errors(tiny):
  model_def, params, _, _, batch = tiny
  model = nnx.merge(model_def, params)
  with pytest.raises(ValueError, match=r'stickman.*\(batch, 16, 16, 3\)'):
    model.decode(batch['stickman'][:, :8], model.prior_latents(jax.random.key(0, impl='rbg'), B))
  with pytest.raises(ValueError, match='latent 1'):
    model.decode(batch['stickman'], [jnp.zeros((B, 8, 8, 8)), jnp.zeros((B, 8, 8, 8))])


# ---------------------------------------------------------------------------------- losses


def test_kl_per_scale_and_mean_of_scales():
  mu = jnp.zeros((3, 2, 2, 4))
  assert float(al.gaussian_kl(mu, jnp.zeros_like(mu))) == 0.0
  rng = np.random.default_rng(0)
  m, s = rng.standard_normal((3, 2, 2, 4)), 0.3 * rng.standard_normal((3, 2, 2, 4))
  ref = np.mean(np.sum(-s + 0.5 * (np.exp(2 * s) + m**2) - 0.5, axis=(1, 2, 3)))
  np.testing.assert_allclose(al.gaussian_kl(jnp.asarray(m), jnp.asarray(s)), ref, rtol=1e-5)
  # Two scales: the mean of their KLs (here 0 and 0.5·dim of the second).
  one = jnp.ones((3, 4, 4, 2))
  np.testing.assert_allclose(
      al.latent_kl([mu, one], [jnp.zeros_like(mu), jnp.zeros_like(one)]), 0.5 * 0.5 * 32)


def test_dual_ascent_gated_by_init_batches():
  cfg = al.LossConfig()
  # The rule itself (bds_jax.models.objectives.dual_ascent) is tested in test_losses.py.
  assert float(al.update_gamma(0.25, 5000.0, cfg.n_init_batches - 1, cfg)) == 0.25
  np.testing.assert_allclose(al.update_gamma(0.25, 5000.0, cfg.n_init_batches, cfg), 0.29)


def test_keypoint_l2_and_clamp():
  pred = jnp.zeros((2, 1, 2))
  target = jnp.array([[[3.0, 4.0]], [[0.0, 1.0]]])
  np.testing.assert_allclose(al.keypoint_l2(pred, target), 3.0)  # (5 + 1) / 2, not squared
  assert float(al.adversarial_term(1.0, 1.2)) == 1.0
  np.testing.assert_allclose(al.adversarial_term(2.0, 1.2), 1.2)
  assert float(jax.grad(al.adversarial_term)(1.0, 1.2)) == 1.0
  assert float(jax.grad(al.adversarial_term)(2.0, 1.2)) == 0.0


def test_ssim_identical_is_one_and_drops_with_noise():
  x = jnp.asarray(_RNG.uniform(size=(2, 16, 16, 3)), jnp.float32)
  x = (x + jnp.roll(x, 1, axis=1)) * 0.5  # some structure
  noise = jnp.asarray(_RNG.standard_normal(x.shape), jnp.float32)
  ssim = jax.jit(al.ssim)
  np.testing.assert_allclose(ssim(x, x), 1.0, atol=1e-5)
  noisy = [np.asarray(ssim(x, jnp.clip(x + s * noise, 0, 1))) for s in (0.02, 0.1, 0.3)]
  assert np.all(noisy[0] < 1.0) and np.all(noisy[0] > noisy[1]) and np.all(noisy[1] > noisy[2])
  w = al.gaussian_window()
  assert w.shape == (11,) and abs(float(w.sum()) - 1.0) < 1e-6
  with pytest.raises(ValueError, match='at least 11'):
    al.ssim(x[:, :8, :8], x[:, :8, :8])

  # The no-VGG likelihood: pixel L1 + (1 - SSIM) on [0, 1]-mapped images.
  likelihood = jax.jit(lambda a, b: al.likelihood(None, a, b, al.LossConfig()))
  zero, terms = likelihood(x, x)
  assert abs(float(zero)) < 1e-5 and set(terms) == {'ll_l1', 'll_ssim'}
  loss, terms = likelihood(1.0 - x, x)
  np.testing.assert_allclose(loss, terms['ll_l1'] + 1.0 - terms['ll_ssim'], rtol=1e-6)
  assert float(loss) > 0.5


def test_person_weighted_likelihood_counts_the_person_more():
  """loss.person_weight: every term is a mean weighted 1 on the room and person_weight on
  the person mask; at 1 it is the plain likelihood."""
  x = jnp.asarray(_RNG.uniform(-1, 1, size=(2, 16, 16, 3)), jnp.float32)
  mask = np.zeros((2, 16, 16, 1), np.float32)
  mask[:, 4:12, 6:10] = 1.0
  on_person = jnp.asarray(np.where(mask > 0, -x, x))   # wrong only on the person
  on_room = jnp.asarray(np.where(mask > 0, x, -x))     # wrong only on the room
  ll = jax.jit(lambda a, b, m, w: al.likelihood(None, a, b, al.LossConfig(person_weight=w), m),
               static_argnums=3)
  for y in (on_person, on_room):  # weight 1: the plain likelihood, mask or not
    np.testing.assert_allclose(ll(y, x, jnp.asarray(mask), 1.0)[0],
                               al.likelihood(None, y, x, al.LossConfig())[0], rtol=1e-6)
  l1 = lambda y, w: float(ll(y, x, jnp.asarray(mask), w)[1]['ll_l1'])
  # L1 weighted by hand: mean over pixels and channels of w |y - x| / mean of w.
  weight = 1.0 + 4.0 * mask
  for y in (on_person, on_room):
    expected = np.sum(weight * np.abs(np.asarray(y - x))) / (3 * np.sum(weight))
    np.testing.assert_allclose(l1(y, 5.0), expected, rtol=1e-5)
  assert l1(on_person, 5.0) > 2 * l1(on_person, 1.0)
  assert l1(on_room, 5.0) < l1(on_room, 1.0)
  # SSIM on the person only: a weight that is zero off the person ignores the room.
  person_only = jnp.asarray(mask)
  np.testing.assert_allclose(
      al.ssim((on_room + 1) / 2, (x + 1) / 2, weight=jnp.ones_like(person_only)),
      al.ssim((on_room + 1) / 2, (x + 1) / 2), rtol=1e-5)
  assert np.all(al.ssim((on_room + 1) / 2, (x + 1) / 2, weight=person_only)
                > al.ssim((on_room + 1) / 2, (x + 1) / 2))


def test_perceptual_loss_and_its_gradient():
  weights = vgg.convert_arrays(vgg.random_arrays(0))
  rng = np.random.default_rng(3)
  a, b = (jnp.asarray(np.tanh(rng.standard_normal((1, 16, 16, 3))), jnp.float32) for _ in 'ab')
  weighting = (1.0, 0.5, 1.0, 2.0, 1.0, 3.0)
  # The weights are an argument, not constants folded into the program (slow to compile).
  loss_fn = jax.jit(jax.value_and_grad(
      lambda x, y, w: al.perceptual_loss(w, x, y, weighting), has_aux=True))
  (zero, zero_terms), _ = loss_fn(a, a, weights)
  (loss, terms), grad = loss_fn(a, b, weights)
  # pred and target run as two VGG passes, so equal images may differ by rounding: relative.
  assert abs(float(zero)) < 1e-4 * float(loss) and zero_terms.shape == (6,)
  assert np.all(np.asarray(terms) > 0)
  np.testing.assert_allclose(loss, np.dot(weighting, terms), rtol=1e-6)
  assert np.all(np.isfinite(grad)) and float(jnp.abs(grad).max()) > 0
  # The pixel term is the L1 in ImageNet-normalised space.
  np.testing.assert_allclose(
      terms[0], jnp.mean(jnp.abs(vgg.normalize_input(a) - vgg.normalize_input(b))), rtol=1e-6)
  with pytest.raises(ValueError, match='divisible by 16'):
    vgg.vgg19_features(weights, a[:, :12, :12])
  with pytest.raises(ValueError, match='6 terms'):
    al.perceptual_loss(weights, a, b, (1.0,) * 5)


# ------------------------------------------------------- main loss, adversary, optimisation


@pytest.fixture(scope='module')
def train_step(tiny):
  """One jitted Adam step on the main loss (no VGG); returns grads w.r.t. arguments 0 and 1."""
  model_def, params, reg_def, _, _ = tiny
  tx = optax.adam(1e-3, b1=0.5, b2=0.9)
  loss_fn = functools.partial(al.main_loss, model_def=model_def, reg_def=reg_def)
  grad_fn = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)

  @jax.jit
  def step(params, opt, reg_params, gamma, i, batch, key):
    (loss, aux), (grads, reg_grads) = grad_fn(params, reg_params, None, gamma, i, batch, key)
    updates, opt = tx.update(grads, opt, params)
    return loss, aux, grads, reg_grads, optax.apply_updates(params, updates), opt

  return step, tx.init(params)


def test_main_loss_with_vgg_traces(tiny):
  model_def, params, reg_def, reg_params, batch = tiny
  vgg_weights = {name: {'kernel': jax.ShapeDtypeStruct((3, 3, cin, cout), jnp.float32),
                        'bias': jax.ShapeDtypeStruct((cout,), jnp.float32)}
                 for _, name, cin, cout in vgg.CONVS}
  loss_fn = functools.partial(al.main_loss, model_def=model_def, reg_def=reg_def)
  loss, aux = jax.eval_shape(loss_fn, params, reg_params, vgg_weights, jnp.float32(0.0),
                             jnp.int32(0), batch, jax.random.key(0, impl='rbg'))
  assert loss.shape == () and aux['reconstruction'].shape == (B, S, S, 3)
  assert {f'll_{n}' for n in vgg.TAP_NAMES} <= set(aux)


def test_main_loss_gradients_adversary_and_frozen_regressor(tiny, train_step):
  model_def, params, reg_def, reg_params, batch = tiny
  step, opt = train_step
  key = jax.random.key(3, impl='rbg')
  gamma, i = jnp.float32(1e-3), jnp.int32(10)  # KL active
  run = lambda b, k=key: step(params, opt, reg_params, gamma, i, b, k)

  # Far targets: L_reg > 1.2 is clamped, so the step has no adversarial gradient.
  far = dict(batch, appearance_keypoints=batch['appearance_keypoints'] + 10.0)
  _, aux_far, grads_far, _, _, _ = run(far)
  assert float(aux_far['regressor_loss']) > 1.2
  # Targets near the regressor's prediction (the means do not depend on them): active.
  pred = nnx.merge(reg_def, reg_params)(aux_far['means'])
  near = dict(batch, appearance_keypoints=pred + 0.05)
  loss, aux, grads, reg_grads, _, _ = run(near)
  assert float(aux['regressor_loss']) < 1.2 and float(aux['kl']) > 0
  assert set(aux) >= {'ll_l1', 'll_ssim', 'likelihood', 'kl', 'regressor_loss'}
  np.testing.assert_allclose(
      loss, aux['likelihood'] + gamma * aux['kl'] - 4.0 * aux['regressor_loss'], rtol=1e-5)
  _assert_all_grads(grads, 'appearance model')  # every block of every stream
  # The main loss never updates the regressor.
  assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(reg_grads))
  # The difference of the two steps is the adversary's gradient: it reaches the appearance
  # encoder (upstream's no_grad means made it vanish) and nothing else.
  diff = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), grads, grads_far)
  for stream in ('app_up', 'app_down'):
    assert max(jax.tree.leaves(diff[stream])) > 1e-6, stream
  for stream in ('pose_up', 'decoder'):
    assert max(jax.tree.leaves(diff[stream])) == 0.0, stream
  # Training mode: dropout and posterior noise differ per key, so do the reconstructions.
  other = run(near, jax.random.key(4, impl='rbg'))[1]
  assert float(jnp.abs(other['reconstruction'] - aux['reconstruction']).max()) > 1e-4


def test_regressor_loss_trains_regressor_only(tiny, evaluated):
  _, _, reg_def, reg_params, batch = tiny
  means = evaluated[1]
  loss_fn = functools.partial(al.regressor_loss, reg_def=reg_def)
  g_reg, g_means = jax.jit(jax.grad(loss_fn, argnums=(0, 1)))(reg_params, means,
                                                               batch['appearance_keypoints'])
  _assert_all_grads(g_reg, 'regressor')
  assert all(float(jnp.abs(g).max()) == 0.0 for g in g_means)


def test_few_steps_lower_the_main_loss(tiny, train_step):
  model_def, params, _, reg_params, batch = tiny
  step, opt = train_step
  # Adversary clamped: a constant.
  far = dict(batch, appearance_keypoints=batch['appearance_keypoints'] + 10.0)
  key = jax.random.key(5, impl='rbg')  # the same dropout and noise every step
  args = (reg_params, jnp.float32(1e-3), jnp.int32(10), far, key)
  losses = []
  for _ in range(5):
    loss, _, _, _, params, opt = step(params, opt, *args)
    losses.append(float(loss))
  assert losses[-1] < losses[0] - 0.02 * abs(losses[0]), losses


def test_patch_discriminator_learns_and_its_terms_reach_only_the_generator():
  """The hinge loss trains the discriminator to tell smooth images from noise; the appearance
  model's terms (adversarial, feature matching) hold it fixed and reach the image."""
  disc = discriminator.PatchDiscriminator(_rngs(2), channels=8, num_layers=2)
  graph, params = nnx.split(disc)
  params = nnx.to_pure_dict(params)
  rng = np.random.default_rng(4)
  real = jnp.asarray(np.tanh(np.cumsum(rng.standard_normal((4, 16, 16, 3)), axis=2) / 4),
                     jnp.float32)
  fake = jnp.asarray(rng.uniform(-1, 1, size=real.shape), jnp.float32)
  stick = jnp.asarray(np.where(rng.uniform(size=real.shape) > 0.8, 1.0, -1.0), jnp.float32)
  logits, feats = disc(real, stick)
  assert logits.shape == (4, 4, 4, 1) and [f.shape[-1] for f in feats] == [8, 16]
  tx = optax.adam(2e-3, b1=0.5)
  opt = tx.init(params)
  loss_fn = jax.jit(jax.value_and_grad(functools.partial(al.discriminator_loss, disc_def=graph)))
  losses = []
  for _ in range(40):
    loss, grads = loss_fn(params, real, fake, stick)
    updates, opt = tx.update(grads, opt, params)
    params = optax.apply_updates(params, updates)
    losses.append(float(loss))
  assert losses[-1] < 0.5 * losses[0], losses
  trained = nnx.merge(graph, params)
  assert float(jnp.mean(trained(real, stick)[0])) > float(jnp.mean(trained(fake, stick)[0]))

  def generator(p, x):
    gan, matching = al.gan_terms(p, x, real, stick, disc_def=graph)
    return gan + matching
  g_disc, g_image = jax.grad(generator, argnums=(0, 1))(params, fake)
  assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(g_disc))
  assert float(jnp.abs(g_image).max()) > 0
