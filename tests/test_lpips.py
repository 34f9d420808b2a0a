"""LPIPS (VGG16, v0.1): basic properties, agreement with a PyTorch reference written here from
the paper / lpips package definition, and the npz checks. Weights are random, in the format."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bds_jax import errors
from bds_jax.models import lpips

SIZE = 32


@pytest.fixture(scope='module')
def arrays():
  out = lpips.random_arrays(0)
  rng = np.random.default_rng(5)
  for key in [k for k in out if k.endswith('.bias')]:  # nonzero biases: their layout is checked
    out[key] = rng.normal(0.0, 0.05, out[key].shape).astype(np.float32)
  return out


@pytest.fixture(scope='module')
def npz_path(arrays, tmp_path_factory):
  path = tmp_path_factory.mktemp('lpips') / 'lpips_vgg.npz'
  extra = {'scaling_layer.shift': np.zeros((1, 3, 1, 1), np.float32),  # ignored
           'classifier.0.bias': np.zeros(4096, np.float32)}
  np.savez(path, **arrays, **extra)
  return str(path)


@pytest.fixture(scope='module')
def params(npz_path):
  return lpips.load_lpips(npz_path)


@pytest.fixture(scope='module')
def images():
  rng = np.random.default_rng(1)
  base = rng.uniform(-1, 1, (3, SIZE, SIZE, 3)).astype(np.float32)
  other = np.clip(base + rng.normal(0, 0.3, base.shape), -1, 1).astype(np.float32)
  return base, other


@pytest.fixture(scope='module')
def distance(params, images):
  """Our LPIPS of (base, other), (other, base), (base, base), and base's taps: one jitted call."""
  base, other = images

  @jax.jit
  def run(params, base, other):
    d = lpips.lpips(params, jnp.concatenate([base, other, base]),
                    jnp.concatenate([other, base, base]))
    return d.reshape(3, -1), lpips.features(params, base)
  return jax.tree.map(np.asarray, run(params, base, other))


def test_identity_symmetry_and_shapes(distance):
  (ab, ba, aa), feats = distance
  assert ab.shape == (3,) and np.all(np.isfinite(ab)) and np.all(ab > 0)
  np.testing.assert_allclose(ba, ab, rtol=1e-5)
  assert np.all(np.abs(aa) <= 1e-6 * ab)  # zero, relative to the distance's scale
  assert [f.shape for f in feats] == [(3, 32, 32, 64), (3, 16, 16, 128), (3, 8, 8, 256),
                                      (3, 4, 4, 512), (3, 2, 2, 512)]
  norms = [np.linalg.norm(f, axis=-1) for f in feats]  # unit, or 0 where every ReLU is off
  assert all(np.all((n < 1 + 1e-5) & ((n > 1 - 1e-5) | (n < 1e-6))) for n in norms)


def _torch_lpips(arrays, a, b):
  """The reference: torchvision's vgg16 `features` layout (an nn.Sequential whose indices
  are the state-dict names), sliced as the lpips package, its normalisation and 1x1 heads."""
  torch = pytest.importorskip('torch')
  nn = torch.nn
  cfg = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512]
  layers, cin = [], 3
  for v in cfg:
    if v == 'M':
      layers.append(nn.MaxPool2d(2, 2))
    else:
      layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
      cin = v
  features = nn.Sequential(*layers)
  features.load_state_dict({k[len('features.'):]: torch.from_numpy(v) for k, v in arrays.items()
                            if k.startswith('features.')})
  heads = [nn.Conv2d(c, 1, 1, bias=False) for c in (64, 128, 256, 512, 512)]
  for k, h in enumerate(heads):
    h.weight.data = torch.from_numpy(arrays[f'lin{k}.model.1.weight'])
  shift = torch.tensor([-.030, -.088, -.188])[None, :, None, None]
  scale = torch.tensor([.458, .448, .450])[None, :, None, None]

  def taps(x):
    h = (torch.from_numpy(x).permute(0, 3, 1, 2) - shift) / scale
    out = []
    for lo, hi in ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30)):
      h = features[lo:hi](h)
      out.append(h / (torch.sqrt(torch.sum(h**2, dim=1, keepdim=True)) + 1e-10))
    return out

  with torch.no_grad():
    total = sum(head((fa - fb)**2).mean(dim=(2, 3)) for head, fa, fb in
                zip(heads, taps(a), taps(b)))
  return total[:, 0].double().numpy()


def test_matches_pytorch_reference(arrays, images, distance):
  ref = _torch_lpips(arrays, *images)
  scale = np.max(np.abs(ref))
  err = np.max(np.abs(distance[0][0] - ref))
  print(f'LPIPS vs PyTorch reference: max abs diff {err:.3g}, scale {scale:.3g}, '
        f'relative {err / scale:.3g}')
  assert err <= 1e-4 * scale


def test_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match=r'nothere\.npz.*recipe'):
    lpips.load_lpips(str(tmp_path / 'nothere.npz'))


def test_bad_arrays_name_the_file_and_array(arrays, tmp_path):
  cases = {
      'no_head.npz': ({k: v for k, v in arrays.items() if k != 'lin3.model.1.weight'},
                      r"no_head\.npz.*missing.*lin3\.model\.1\.weight"),
      'no_conv.npz': ({k: v for k, v in arrays.items() if k != 'features.28.bias'},
                      r"no_conv\.npz.*missing VGG16.*features\.28\.bias"),
      'head_shape.npz': (dict(arrays, **{'lin1.model.1.weight': np.ones((128,), np.float32)}),
                         r"head_shape\.npz.*'lin1\.model\.1\.weight' has shape \(128,\), "
                         r"expected \(1, 128, 1, 1\)"),
      'conv_shape.npz': (dict(arrays, **{'features.14.weight': np.zeros((256, 256, 1, 1),
                                                                        np.float32)}),
                         r"conv_shape\.npz.*'features\.14\.weight' \(conv3_3\) has shape "
                         r"\(256, 256, 1, 1\), expected \(256, 256, 3, 3\)"),
      'negative.npz': (dict(arrays, **{'lin0.model.1.weight': -np.ones((1, 64, 1, 1),
                                                                       np.float32)}),
                       r"negative\.npz.*'lin0\.model\.1\.weight' has negative entries"),
  }
  for name, (content, pattern) in cases.items():
    path = tmp_path / name
    np.savez(path, **content)
    with pytest.raises(errors.InputError, match=pattern):
      lpips.load_lpips(str(path))
  junk = tmp_path / 'junk.npz'
  junk.write_bytes(b'PK\x03\x04 not really a zip')
  with pytest.raises(errors.InputError, match=r'junk\.npz.*not a readable npz.*lpips\.py'):
    lpips.load_lpips(str(junk))
