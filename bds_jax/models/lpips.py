"""LPIPS, the learned perceptual image distance (Zhang et al. 2018, "The Unreasonable
Effectiveness of Deep Features as a Perceptual Metric"), VGG16 variant, version 0.1: what the
`lpips` package's `lpips.LPIPS(net='vgg')` computes in eval mode (no dropout, no spatial map).

For NHWC images x, y in [-1, 1]:
1. the scaling layer (x - shift) / scale, shift (-.030, -.088, -.188), scale (.458, .448, .450);
2. torchvision's `vgg16().features`, tapped after relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
   (`features` indices 3, 8, 15, 22, 29; the package's `net.slice1..5`);
3. each tap unit-normalised over channels, f / (sqrt(sum_c f^2) + 1e-10);
4. the squared difference of x's and y's normalised taps, weighted over channels by the tap's
   non-negative 1x1 linear head (no bias), averaged over space;
5. the sum over the five taps: one distance per image, 0 for identical images.
Max-pools floor odd sizes as torch's do; images need at least 16 pixels a side.

Weights come from a local npz of named arrays (nothing is downloaded; read with
allow_pickle=False; every array below must be present, finite, float and of its shape):

  backbone, torchvision vgg16 state-dict names (weights OIHW):
  i   layer     features.{i}.weight   (.bias: (out,))
  0   conv1_1   (64, 3, 3, 3)         17  conv4_1   (512, 256, 3, 3)
  2   conv1_2   (64, 64, 3, 3)        19  conv4_2   (512, 512, 3, 3)
  5   conv2_1   (128, 64, 3, 3)       21  conv4_3   (512, 512, 3, 3)
  7   conv2_2   (128, 128, 3, 3)      24  conv5_1   (512, 512, 3, 3)
  10  conv3_1   (256, 128, 3, 3)      26  conv5_2   (512, 512, 3, 3)
  12  conv3_2   (256, 256, 3, 3)      28  conv5_3   (512, 512, 3, 3)
  14  conv3_3   (256, 256, 3, 3)
  heads, the lpips package's names (also non-negative):
  lin0.model.1.weight (1, 64, 1, 1)   lin1.. (1, 128, 1, 1)   lin2.. (1, 256, 1, 1)
  lin3.model.1.weight (1, 512, 1, 1)  lin4.model.1.weight (1, 512, 1, 1)
Other arrays (the classifier, `scaling_layer.*`) are ignored.

Making the file from the `lpips` package (`pip install lpips`; it takes the backbone from
torchvision's ImageNet vgg16 and its own trained heads). Its `net.slice{s}.{i}.*` keep the
torchvision `features` index i, so they map back by dropping the slice:

  import lpips, numpy as np
  sd = lpips.LPIPS(net='vgg', version='0.1').state_dict()
  arrays = {k: v.numpy() for k, v in sd.items() if k.startswith('lin')}
  arrays.update({'features.' + k.split('.', 2)[2]: v.numpy() for k, v in sd.items()
                 if k.startswith('net.slice')})
  np.savez('lpips_vgg.npz', **arrays)
"""

import os

import jax.numpy as jnp
import numpy as np

from bds_jax import errors
from bds_jax.models import vgg

# torchvision vgg16 `features` up to relu5_3: (index, name, in, out) or 'pool'.
LAYERS = (
    (0, 'conv1_1', 3, 64), (2, 'conv1_2', 64, 64), 'pool',
    (5, 'conv2_1', 64, 128), (7, 'conv2_2', 128, 128), 'pool',
    (10, 'conv3_1', 128, 256), (12, 'conv3_2', 256, 256), (14, 'conv3_3', 256, 256), 'pool',
    (17, 'conv4_1', 256, 512), (19, 'conv4_2', 512, 512), (21, 'conv4_3', 512, 512), 'pool',
    (24, 'conv5_1', 512, 512), (26, 'conv5_2', 512, 512), (28, 'conv5_3', 512, 512),
)
CONVS = tuple(l for l in LAYERS if l != 'pool')
TAPS = ('conv1_2', 'conv2_2', 'conv3_3', 'conv4_3', 'conv5_3')  # their ReLU outputs
TAP_CHANNELS = (64, 128, 256, 512, 512)
SHIFT = (-.030, -.088, -.188)
SCALE = (.458, .448, .450)
EPS = 1e-10
DOC = 'bds_jax/models/lpips.py'
HEAD_SHAPES = {f'lin{k}.model.1.weight': (1, c, 1, 1) for k, c in enumerate(TAP_CHANNELS)}
ARRAY_SHAPES = {**vgg.conv_shapes(CONVS), **HEAD_SHAPES}


def load_lpips(path: str) -> dict:
  """Reads the npz (format in the module docstring) into {'vgg': ..., 'heads': [(C_k,)]}."""
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'LPIPS weights file {path!r} does not exist. Write it once with the recipe in the '
        f'{DOC} docstring (the lpips package, VGG16 v0.1), or leave lpips_weights empty.')
  return convert_arrays(vgg.read_npz(path, ARRAY_SHAPES, DOC, errors.InputError), source=path)


def convert_arrays(arrays, source: str = 'arrays') -> dict:
  """Checks the named arrays (torchvision OIHW backbone, lpips heads); the params pytree."""
  missing = [k for k in HEAD_SHAPES if k not in arrays]
  if missing:
    raise errors.InputError(
        f'{source}: missing LPIPS head array(s) {", ".join(missing)}. Expected the lpips '
        f"package's names ('lin0.model.1.weight' ... 'lin4.model.1.weight'); see {DOC}.")
  backbone = vgg.convert_arrays(arrays, source, CONVS, 'vgg16', DOC, errors.InputError)
  heads = []
  for key, shape in HEAD_SHAPES.items():
    w = vgg.checked(arrays, key, shape, source, error=errors.InputError)
    # Trained heads are clamped at 0: a negative weight would allow negative distances.
    if np.any(w < 0):
      raise errors.InputError(f'{source}: array {key!r} has negative entries; LPIPS heads '
                              f'are non-negative (see {DOC}).')
    heads.append(jnp.asarray(w.reshape(-1)))
  return {'vgg': backbone, 'heads': heads}


def features(params: dict, images) -> list:
  """NHWC images in [-1, 1] -> the five taps, each unit-normalised over channels (float32)."""
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f'LPIPS expects NHWC RGB images, got shape {images.shape}.')
  if min(images.shape[1:3]) < 16:
    raise ValueError(f'LPIPS needs images of at least 16x16 (four 2x2 max-pools before '
                     f'relu5_3), got {images.shape[1:3]}.')
  x = (images.astype(jnp.float32) - jnp.asarray(SHIFT)) / jnp.asarray(SCALE)
  taps = vgg.conv_stack(params['vgg'], x, LAYERS, TAPS)
  # eps outside the sqrt, as the package: an all-zero tap (dead ReLUs) stays 0, not NaN.
  return [f / (jnp.sqrt(jnp.sum(jnp.square(f), axis=-1, keepdims=True)) + EPS) for f in taps]


def distance_from_features(params: dict, feats_a: list, feats_b: list):
  """LPIPS (B,) from `features` outputs (lets a caller extract each image's taps once)."""
  total = 0.0
  for w, fa, fb in zip(params['heads'], feats_a, feats_b):
    total = total + jnp.mean(jnp.square(fa - fb) @ w, axis=(1, 2))
  return total


def lpips(params: dict, images_a, images_b):
  """LPIPS distance (B,) between NHWC batches in [-1, 1] (one VGG16 pass over both)."""
  n = images_a.shape[0]
  feats = features(params, jnp.concatenate([images_a, images_b]))
  return distance_from_features(params, [f[:n] for f in feats], [f[n:] for f in feats])


def random_arrays(seed: int = 0) -> dict:
  """Random arrays in the npz format (He-normal backbone, zero biases, uniform non-negative
  heads): for tests, which must not need the real weights."""
  out = vgg.random_arrays(seed, CONVS)
  rng = np.random.default_rng(seed + 1)
  for key, shape in HEAD_SHAPES.items():
    out[key] = rng.uniform(0.0, 2.0 / shape[1], shape).astype(np.float32)
  return out
