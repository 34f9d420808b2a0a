"""Inception-v3 (inference only) for the Inception Score and FID (reference spec §5.7).

The network is torchvision's `inception_v3` as upstream's IS used it (`transform_input=False`,
eval mode, no auxiliary head), written in Flax NNX: the stem, Mixed_5b-5d (InceptionA),
Mixed_6a (B), Mixed_6b-6e (C), Mixed_7a (D), Mixed_7b-7c (E), global average pooling (the
2048-d "pool3" features of FID) and the 1000-way `fc` (the IS logits). Each BasicConv2d is a
bias-free conv, BatchNorm (eps 1e-3, running statistics) and ReLU; the BatchNorm is folded
into the conv's kernel and bias when the weights are loaded, which is exact at inference.
Pooling follows torchvision: max-pool 3x3 stride 2 without padding; the branch average pools
are 3x3 stride 1 with one pixel of zero padding counted in the mean (count_include_pad).

`inception_v3(params, images)` takes NHWC images in [-1, 1] (upstream fed [-1, 1] with no
ImageNet normalisation), resizes them bilinearly to 299x299 (half-pixel centres, no
antialiasing: torch's F.interpolate(mode='bilinear', align_corners=False)) and returns
(logits (B, 1000), pool features (B, 2048)).

Weights come from a local npz of named arrays (nothing is downloaded; read with
allow_pickle=False), named and laid out as torchvision's state dict:
  <conv>.conv.weight        (out, in, kh, kw)   for every BasicConv2d <conv>
  <conv>.bn.weight, <conv>.bn.bias, <conv>.bn.running_mean, <conv>.bn.running_var   (out,)
  fc.weight (1000, 2048), fc.bias (1000,)
with <conv> one of the 94 names that `array_shapes()` lists with their exact shapes
(`python -m bds_jax.models.inception` prints the table), e.g. Conv2d_1a_3x3 (32, 3, 3, 3),
Mixed_5b.branch5x5_2 (64, 48, 5, 5), Mixed_6b.branch7x7_2 (128, 128, 1, 7),
Mixed_7c.branch3x3dbl_3b (384, 384, 3, 1). AuxLogits.* and *.num_batches_tracked are ignored.
Every listed array must be present, finite, float and of its shape; errors name the array.

Making the file from torchvision's published ImageNet weights (what upstream used):

  import numpy as np, torchvision
  net = torchvision.models.inception_v3(
      weights=torchvision.models.Inception_V3_Weights.IMAGENET1K_V1)
  np.savez('inception_v3.npz', **{k: v.numpy() for k, v in net.state_dict().items()
                                  if not k.startswith('AuxLogits')
                                  and not k.endswith('num_batches_tracked')})

(torchvision turns transform_input on for these weights; that is a forward-pass flag, not a
weight, and upstream's IS switched it off, as we do.)
"""

import functools
import os
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

INPUT_SIZE = 299
NUM_CLASSES = 1000
POOL_FEATURES = 2048
BN_EPS = 1e-3


class BasicConv(nnx.Module):
  """Conv (BatchNorm folded in) + ReLU; `kernel` HWIO."""

  def __init__(self, cin: int, cout: int, kernel=(1, 1), stride: int = 1, padding=(0, 0), *,
               rngs: nnx.Rngs):
    kh, kw = kernel
    self.kernel = nnx.Param(jax.random.normal(rngs.params(), (kh, kw, cin, cout)) *
                            (2.0 / (kh * kw * cin))**0.5)
    self.bias = nnx.Param(jnp.zeros((cout,)))
    self.stride = stride
    self.padding = tuple(padding)

  def __call__(self, x):
    ph, pw = self.padding
    y = jax.lax.conv_general_dilated(x, self.kernel.value, (self.stride,) * 2,
                                     ((ph, ph), (pw, pw)),
                                     dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return jax.nn.relu(y + self.bias.value)


def max_pool(x):
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1), 'VALID')


def avg_pool(x):
  """3x3, stride 1, zero padding 1, padding counted in the mean (torch's default)."""
  s = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 3, 3, 1), (1, 1, 1, 1),
                            ((0, 0), (1, 1), (1, 1), (0, 0)))
  return s / 9.0


class InceptionA(nnx.Module):

  def __init__(self, cin: int, pool_features: int, rngs: nnx.Rngs):
    c = functools.partial(BasicConv, rngs=rngs)
    self.branch1x1 = c(cin, 64)
    self.branch5x5_1 = c(cin, 48)
    self.branch5x5_2 = c(48, 64, (5, 5), padding=(2, 2))
    self.branch3x3dbl_1 = c(cin, 64)
    self.branch3x3dbl_2 = c(64, 96, (3, 3), padding=(1, 1))
    self.branch3x3dbl_3 = c(96, 96, (3, 3), padding=(1, 1))
    self.branch_pool = c(cin, pool_features)

  def __call__(self, x):
    return jnp.concatenate([
        self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
        self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
        self.branch_pool(avg_pool(x))], axis=-1)


class InceptionB(nnx.Module):

  def __init__(self, cin: int, rngs: nnx.Rngs):
    c = functools.partial(BasicConv, rngs=rngs)
    self.branch3x3 = c(cin, 384, (3, 3), stride=2)
    self.branch3x3dbl_1 = c(cin, 64)
    self.branch3x3dbl_2 = c(64, 96, (3, 3), padding=(1, 1))
    self.branch3x3dbl_3 = c(96, 96, (3, 3), stride=2)

  def __call__(self, x):
    return jnp.concatenate([
        self.branch3x3(x), self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
        max_pool(x)], axis=-1)


class InceptionC(nnx.Module):

  def __init__(self, cin: int, c7: int, rngs: nnx.Rngs):
    c = functools.partial(BasicConv, rngs=rngs)
    row, col = dict(kernel=(1, 7), padding=(0, 3)), dict(kernel=(7, 1), padding=(3, 0))
    self.branch1x1 = c(cin, 192)
    self.branch7x7_1 = c(cin, c7)
    self.branch7x7_2 = c(c7, c7, **row)
    self.branch7x7_3 = c(c7, 192, **col)
    self.branch7x7dbl_1 = c(cin, c7)
    self.branch7x7dbl_2 = c(c7, c7, **col)
    self.branch7x7dbl_3 = c(c7, c7, **row)
    self.branch7x7dbl_4 = c(c7, c7, **col)
    self.branch7x7dbl_5 = c(c7, 192, **row)
    self.branch_pool = c(cin, 192)

  def __call__(self, x):
    b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
    d = x
    for conv in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                 self.branch7x7dbl_4, self.branch7x7dbl_5):
      d = conv(d)
    return jnp.concatenate([self.branch1x1(x), b7, d, self.branch_pool(avg_pool(x))], axis=-1)


class InceptionD(nnx.Module):

  def __init__(self, cin: int, rngs: nnx.Rngs):
    c = functools.partial(BasicConv, rngs=rngs)
    self.branch3x3_1 = c(cin, 192)
    self.branch3x3_2 = c(192, 320, (3, 3), stride=2)
    self.branch7x7x3_1 = c(cin, 192)
    self.branch7x7x3_2 = c(192, 192, (1, 7), padding=(0, 3))
    self.branch7x7x3_3 = c(192, 192, (7, 1), padding=(3, 0))
    self.branch7x7x3_4 = c(192, 192, (3, 3), stride=2)

  def __call__(self, x):
    b7 = x
    for conv in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3,
                 self.branch7x7x3_4):
      b7 = conv(b7)
    return jnp.concatenate([self.branch3x3_2(self.branch3x3_1(x)), b7, max_pool(x)], axis=-1)


class InceptionE(nnx.Module):

  def __init__(self, cin: int, rngs: nnx.Rngs):
    c = functools.partial(BasicConv, rngs=rngs)
    row, col = dict(kernel=(1, 3), padding=(0, 1)), dict(kernel=(3, 1), padding=(1, 0))
    self.branch1x1 = c(cin, 320)
    self.branch3x3_1 = c(cin, 384)
    self.branch3x3_2a = c(384, 384, **row)
    self.branch3x3_2b = c(384, 384, **col)
    self.branch3x3dbl_1 = c(cin, 448)
    self.branch3x3dbl_2 = c(448, 384, (3, 3), padding=(1, 1))
    self.branch3x3dbl_3a = c(384, 384, **row)
    self.branch3x3dbl_3b = c(384, 384, **col)
    self.branch_pool = c(cin, 192)

  def __call__(self, x):
    b3 = self.branch3x3_1(x)
    d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
    return jnp.concatenate([
        self.branch1x1(x), self.branch3x3_2a(b3), self.branch3x3_2b(b3),
        self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d), self.branch_pool(avg_pool(x))],
                           axis=-1)


class InceptionV3(nnx.Module):
  """torchvision's Inception3 at inference, without AuxLogits; attribute names are its own."""

  def __init__(self, rngs: nnx.Rngs):
    c = functools.partial(BasicConv, rngs=rngs)
    self.Conv2d_1a_3x3 = c(3, 32, (3, 3), stride=2)  # pylint: disable=invalid-name
    self.Conv2d_2a_3x3 = c(32, 32, (3, 3))  # pylint: disable=invalid-name
    self.Conv2d_2b_3x3 = c(32, 64, (3, 3), padding=(1, 1))  # pylint: disable=invalid-name
    self.Conv2d_3b_1x1 = c(64, 80)  # pylint: disable=invalid-name
    self.Conv2d_4a_3x3 = c(80, 192, (3, 3))  # pylint: disable=invalid-name
    self.Mixed_5b = InceptionA(192, 32, rngs)  # pylint: disable=invalid-name
    self.Mixed_5c = InceptionA(256, 64, rngs)  # pylint: disable=invalid-name
    self.Mixed_5d = InceptionA(288, 64, rngs)  # pylint: disable=invalid-name
    self.Mixed_6a = InceptionB(288, rngs)  # pylint: disable=invalid-name
    self.Mixed_6b = InceptionC(768, 128, rngs)  # pylint: disable=invalid-name
    self.Mixed_6c = InceptionC(768, 160, rngs)  # pylint: disable=invalid-name
    self.Mixed_6d = InceptionC(768, 160, rngs)  # pylint: disable=invalid-name
    self.Mixed_6e = InceptionC(768, 192, rngs)  # pylint: disable=invalid-name
    self.Mixed_7a = InceptionD(768, rngs)  # pylint: disable=invalid-name
    self.Mixed_7b = InceptionE(1280, rngs)  # pylint: disable=invalid-name
    self.Mixed_7c = InceptionE(2048, rngs)  # pylint: disable=invalid-name
    self.fc = nnx.Linear(POOL_FEATURES, NUM_CLASSES, rngs=rngs)

  def __call__(self, x):
    """NHWC 299x299 network input -> (logits (B, 1000), pool features (B, 2048))."""
    x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
    x = max_pool(x)
    x = max_pool(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)))
    for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                  self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b,
                  self.Mixed_7c):
      x = block(x)
    pool = jnp.mean(x, axis=(1, 2))
    return self.fc(pool), pool  # dropout is the identity at inference


@functools.cache
def _abstract():
  """(graph, abstract pure-dict params) of the network; built once, without initialising."""
  graph, state = nnx.split(nnx.eval_shape(lambda: InceptionV3(nnx.Rngs(0))))
  return graph, nnx.to_pure_dict(state)


def _conv_paths(tree, prefix=()):
  """Paths of every BasicConv (a dict with 'kernel' and 'bias') in the params, in order."""
  if 'kernel' in tree and prefix != ('fc',):
    yield prefix
    return
  for k, v in tree.items():
    if isinstance(v, dict):
      yield from _conv_paths(v, prefix + (k,))


def array_shapes() -> dict:
  """Every npz array the loader needs -> its torchvision shape (see the module docstring)."""
  params = _abstract()[1]
  out = {}
  for path in _conv_paths(params):
    name = '.'.join(path)
    kh, kw, cin, cout = params_at(params, path)['kernel'].shape
    out[f'{name}.conv.weight'] = (cout, cin, kh, kw)
    for part in ('weight', 'bias', 'running_mean', 'running_var'):
      out[f'{name}.bn.{part}'] = (cout,)
  out['fc.weight'] = (NUM_CLASSES, POOL_FEATURES)
  out['fc.bias'] = (NUM_CLASSES,)
  return out


def params_at(tree, path):
  for p in path:
    tree = tree[p]
  return tree


def load_inception_v3(path: str) -> dict:
  """Reads the npz (format in the module docstring) into the network's pure-dict params."""
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'Inception-v3 weights file {path!r} does not exist. Write it once with the recipe in '
        'the bds_jax/models/inception.py docstring (torchvision ImageNet weights).')
  shapes = array_shapes()
  try:
    npz = np.load(path, allow_pickle=False)
    if not isinstance(npz, np.lib.npyio.NpzFile):
      raise ValueError('it holds a single array, not named arrays')
    with npz:
      arrays = {k: npz[k] for k in npz.files if k in shapes}
  except (ValueError, OSError, zipfile.BadZipFile) as e:
    raise ValueError(f'{path!r} is not a readable npz of plain numeric arrays ({e}). Write it '
                     'with np.savez as described in bds_jax/models/inception.py.') from e
  return convert_arrays(arrays, source=path)


def convert_arrays(arrays: dict, source: str = 'arrays') -> dict:
  """Checks torchvision-named arrays, folds each BatchNorm into its conv; pure-dict params."""
  shapes = array_shapes()
  missing = [k for k in shapes if k not in arrays]
  if missing:
    shown = ', '.join(missing[:6]) + (f' and {len(missing) - 6} more' if len(missing) > 6 else '')
    raise ValueError(f'{source}: missing Inception-v3 array(s) {shown}. Expected torchvision '
                     "`inception_v3().state_dict()` names; see bds_jax/models/inception.py.")
  checked = {}
  for key, shape in shapes.items():
    a = np.asarray(arrays[key])
    if a.shape != shape:
      raise ValueError(f'{source}: array {key!r} has shape {a.shape}, expected {shape} '
                       '(torchvision layout, conv weights OIHW).')
    if not np.issubdtype(a.dtype, np.floating) or not np.all(np.isfinite(a)):
      raise ValueError(f'{source}: array {key!r} must hold finite floats, got dtype {a.dtype}.')
    checked[key] = a.astype(np.float64)
  graph, params = _abstract()
  del graph
  out = jax.tree.map(lambda x: None, params)
  for path in _conv_paths(params):
    name = '.'.join(path)
    g = lambda part, name=name: checked[f'{name}.bn.{part}']
    var = g('running_var')
    if np.any(var < 0):
      raise ValueError(f'{source}: {name}.bn.running_var has negative entries.')
    scale = g('weight') / np.sqrt(var + BN_EPS)
    kernel = checked[f'{name}.conv.weight'] * scale[:, None, None, None]
    node = params_at(out, path)
    node['kernel'] = jnp.asarray(kernel.transpose(2, 3, 1, 0), jnp.float32)
    node['bias'] = jnp.asarray(g('bias') - g('running_mean') * scale, jnp.float32)
  out['fc'] = {'kernel': jnp.asarray(checked['fc.weight'].T, jnp.float32),
               'bias': jnp.asarray(checked['fc.bias'], jnp.float32)}
  return out


def resize_bilinear(images, size: int = INPUT_SIZE):
  """NHWC -> (B, size, size, C), torch's bilinear with align_corners=False (no antialiasing)."""
  b, _, _, c = images.shape
  return jax.image.resize(images, (b, size, size, c), 'bilinear', antialias=False)


def inception_v3(params: dict, images):
  """NHWC images in [-1, 1], any size -> (logits (B, 1000), pool features (B, 2048))."""
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f'inception_v3 expects NHWC RGB images, got shape {images.shape}.')
  x = images.astype(jnp.float32)
  if x.shape[1:3] != (INPUT_SIZE, INPUT_SIZE):
    x = resize_bilinear(x)
  return nnx.merge(_abstract()[0], params)(x)


def random_arrays(seed: int = 0) -> dict:
  """Random torchvision-named arrays in the npz format (He-normal convs, BatchNorm statistics
  near identity): for tests, which must not need the real weights."""
  rng = np.random.default_rng(seed)
  out = {}
  for key, shape in array_shapes().items():
    if key.endswith('conv.weight'):
      fan_in = int(np.prod(shape[1:]))
      out[key] = rng.standard_normal(shape) * (2.0 / fan_in)**0.5
    elif key.endswith(('bn.weight', 'running_var')):
      out[key] = rng.uniform(0.5, 1.5, shape)
    elif key == 'fc.weight':
      out[key] = rng.standard_normal(shape) * (1.0 / shape[1])**0.5
    else:
      out[key] = rng.normal(0.0, 0.1, shape)
  return {k: v.astype(np.float32) for k, v in out.items()}


if __name__ == '__main__':
  for k, v in array_shapes().items():
    print(f'{k:45s} {v}')
