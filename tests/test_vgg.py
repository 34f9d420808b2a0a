"""VGG19 feature taps: npz round trip, layout against a NumPy reference, errors, Caffe fold.
Weights are random, written in the documented format. The perceptual loss built on the taps
is tested in test_appearance_model.py."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bds_jax.models import vgg


@pytest.fixture(scope='module')
def arrays():
  return vgg.random_arrays(0)


@pytest.fixture(scope='module')
def npz_path(arrays, tmp_path_factory):
  path = tmp_path_factory.mktemp('vgg') / 'vgg19_features.npz'
  extra = {'features.32.bias': np.zeros(512, np.float32),  # conv5_3: not needed, ignored
           'classifier.6.bias': np.zeros(1000, np.float32)}
  np.savez(path, **arrays, **extra)
  return str(path)


@pytest.fixture(scope='module')
def weights(npz_path):
  return vgg.load_vgg19(npz_path)


def _conv(x, w_oihw, b):
  """NumPy reference: 3x3 conv, padding 1, cross-correlation as PyTorch's; HWC in and out."""
  h, w = x.shape[:2]
  xp = np.pad(x, ((1, 1), (1, 1), (0, 0)))
  out = np.broadcast_to(b, (h, w, b.shape[0])).astype(np.float64)
  for i in range(3):
    for j in range(3):
      out = out + np.einsum('hwc,oc->hwo', xp[i:i + h, j:j + w], w_oihw[:, :, i, j])
  return out


def _conv_relu(x, w_oihw, b):
  return np.maximum(_conv(x, w_oihw, b), 0.0)


def test_round_trip_layout(weights, arrays):
  assert set(weights) == {name for _, name, _, _ in vgg.CONVS}
  assert len(vgg.ARRAY_SHAPES) == 28 and vgg.CONV_INDICES[-1] == 30
  for i, name, cin, cout in vgg.CONVS:
    kernel, bias = weights[name]['kernel'], weights[name]['bias']
    assert kernel.shape == (3, 3, cin, cout) and kernel.dtype == jnp.float32  # HWIO
    np.testing.assert_array_equal(kernel, arrays[f'features.{i}.weight'].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(bias, arrays[f'features.{i}.bias'])


def test_features_match_numpy_reference(weights, arrays):
  image = np.random.default_rng(1).uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
  taps = jax.jit(vgg.vgg19_features)(weights, jnp.asarray(image))
  assert [t.shape for t in taps] == [(1, 16, 16, 3), (1, 16, 16, 64), (1, 8, 8, 128),
                                     (1, 4, 4, 256), (1, 2, 2, 512), (1, 1, 1, 512)]
  # Inputs in [-1, 1] -> [0, 1] -> ImageNet mean / std.
  x = ((image[0] + 1) / 2 - np.array(vgg.IMAGENET_MEAN)) / np.array(vgg.IMAGENET_STD)
  np.testing.assert_allclose(taps[0][0], x, rtol=1e-5, atol=1e-5)
  w = lambda i: (arrays[f'features.{i}.weight'], arrays[f'features.{i}.bias'])
  relu1_2 = _conv_relu(_conv_relu(x, *w(0)), *w(2))
  np.testing.assert_allclose(taps[1][0], relu1_2, rtol=1e-3, atol=1e-3)
  pooled = relu1_2.reshape(8, 2, 8, 2, 64).max(axis=(1, 3))
  relu2_2 = _conv_relu(_conv_relu(pooled, *w(5)), *w(7))
  np.testing.assert_allclose(taps[2][0], relu2_2, rtol=1e-3, atol=1e-3)


def test_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match=r'nothere\.npz.*recipe'):
    vgg.load_vgg19(str(tmp_path / 'nothere.npz'))


def test_missing_array(arrays, tmp_path):
  path = tmp_path / 'partial.npz'
  np.savez(path, **{k: v for k, v in arrays.items() if k != 'features.28.weight'})
  with pytest.raises(ValueError, match=r"partial\.npz.*missing.*features\.28\.weight"):
    vgg.load_vgg19(str(path))


def test_wrong_shape(arrays, tmp_path):
  path = tmp_path / 'bad.npz'
  np.savez(path, **dict(arrays, **{'features.12.weight': np.zeros((256, 256, 1, 1),
                                                                  np.float32)}))
  with pytest.raises(ValueError, match=r"bad\.npz.*'features\.12\.weight' \(conv3_2\) has "
                                       r"shape \(256, 256, 1, 1\), expected \(256, 256, 3, 3\)"):
    vgg.load_vgg19(str(path))


def test_unreadable_files_are_never_unpickled(arrays, tmp_path):
  objects = tmp_path / 'objects.npz'
  bad = np.empty(64, dtype=object)
  np.savez(objects, **dict(arrays, **{'features.0.bias': bad}))
  with pytest.raises(ValueError, match=r'objects\.npz.*not a readable npz'):
    vgg.load_vgg19(str(objects))
  single = tmp_path / 'single.npy'
  np.save(single, np.zeros(3))
  with pytest.raises(ValueError, match=r'single\.npy.*single array'):
    vgg.load_vgg19(str(single))
  junk = tmp_path / 'junk.npz'
  junk.write_bytes(b'PK\x03\x04 not really a zip')
  with pytest.raises(ValueError, match=r'junk\.npz.*not a readable npz'):
    vgg.load_vgg19(str(junk))
  with pytest.raises(ValueError, match=r"'features\.0\.bias' \(conv1_1\) must hold finite"):
    vgg.convert_arrays(dict(arrays, **{'features.0.bias': np.full(64, np.nan, np.float32)}))
  with pytest.raises(ValueError, match='finite floats, got dtype int64'):
    vgg.convert_arrays(dict(arrays, **{'features.0.bias': np.zeros(64, np.int64)}))


def test_caffe_fold_equals_caffe_preprocessing_inside_the_border():
  rng = np.random.default_rng(2)
  w, b = rng.standard_normal((64, 3, 3, 3)) * 0.01, rng.standard_normal(64)
  folded = vgg.caffe_to_torchvision_input({'features.0.weight': w, 'features.0.bias': b})
  x01 = rng.uniform(0, 1, (8, 8, 3))
  caffe_input = 255.0 * x01[..., ::-1] - np.array(vgg.CAFFE_BGR_MEAN)  # BGR, 0-255, - means
  ours = (x01 - np.array(vgg.IMAGENET_MEAN)) / np.array(vgg.IMAGENET_STD)
  ref = _conv(caffe_input, w, b)
  got = _conv(ours, folded['features.0.weight'], folded['features.0.bias'])
  np.testing.assert_allclose(got[1:-1, 1:-1], ref[1:-1, 1:-1], rtol=1e-4, atol=1e-4)
