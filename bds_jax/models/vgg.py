"""VGG19 feature taps for the perceptual loss (reference spec §4.3; upstream `PerceptualVGG`).

The conv stack of torchvision's `vgg19().features` up to relu5_2, frozen, loaded from a local
npz of named arrays (nothing is downloaded). Inputs are NHWC images in [-1, 1], the appearance
model's output range: they are mapped to [0, 1] and normalised with the ImageNet mean
(0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), as upstream. `vgg19_features` returns
six tensors: that normalised input (the loss's pixel term) and relu1_2, relu2_2, relu3_2,
relu4_2, relu5_2 (torchvision `features` indices 3, 8, 13, 22, 31). Max-pooling 2x2 follows
relu1_2, relu2_2, relu3_4 and relu4_4, so the image side must be a multiple of 16.

npz format: torchvision's state-dict names and layouts (weights OIHW, float; any float dtype
is read as float32). Required arrays, `features.{i}.weight` (out, in, 3, 3) and
`features.{i}.bias` (out,):

  i   layer     weight             i   layer     weight
  0   conv1_1   (64, 3, 3, 3)      19  conv4_1   (512, 256, 3, 3)
  2   conv1_2   (64, 64, 3, 3)     21  conv4_2   (512, 512, 3, 3)
  5   conv2_1   (128, 64, 3, 3)    23  conv4_3   (512, 512, 3, 3)
  7   conv2_2   (128, 128, 3, 3)   25  conv4_4   (512, 512, 3, 3)
  10  conv3_1   (256, 128, 3, 3)   28  conv5_1   (512, 512, 3, 3)
  12  conv3_2   (256, 256, 3, 3)   30  conv5_2   (512, 512, 3, 3)
  14  conv3_3   (256, 256, 3, 3)
  16  conv3_4   (256, 256, 3, 3)

Other arrays (conv5_3 / conv5_4 = `features.32` / `features.34`, the classifier) are ignored.
The file is read with allow_pickle=False; every required array's shape is checked.

Making the file from torchvision (ImageNet weights; exactly upstream's network):

  import numpy as np, torchvision
  net = torchvision.models.vgg19(weights=torchvision.models.VGG19_Weights.IMAGENET1K_V1)
  np.savez('vgg19_features.npz', **{k: v.numpy() for k, v in net.state_dict().items()
                                    if k.startswith('features.')})

From Keras (`tf.keras.applications.VGG19(weights='imagenet', include_top=False)`): its
kernels are HWIO and it expects Caffe input (BGR, 0-255, minus the per-channel means
(103.939, 116.779, 123.68)), so transpose the kernels and fold that input convention into
conv1_1 with `caffe_to_torchvision_input` (exact except where a 3x3 window overlaps the zero
padding at the image border):

  convs = [l for l in model.layers if 'conv' in l.name][:14]    # block1_conv1 .. block5_conv2
  arrays = {}
  for i, layer in zip(CONV_INDICES, convs):
    kernel, bias = layer.get_weights()
    arrays[f'features.{i}.weight'] = kernel.transpose(3, 2, 0, 1)
    arrays[f'features.{i}.bias'] = bias
  np.savez('vgg19_features.npz', **caffe_to_torchvision_input(arrays))
"""

import os
import zipfile

import jax
import jax.numpy as jnp
import numpy as np

# (torchvision features index, name, in channels, out channels); 'pool' = 2x2 max-pool.
LAYERS = (
    (0, 'conv1_1', 3, 64), (2, 'conv1_2', 64, 64), 'pool',
    (5, 'conv2_1', 64, 128), (7, 'conv2_2', 128, 128), 'pool',
    (10, 'conv3_1', 128, 256), (12, 'conv3_2', 256, 256), (14, 'conv3_3', 256, 256),
    (16, 'conv3_4', 256, 256), 'pool',
    (19, 'conv4_1', 256, 512), (21, 'conv4_2', 512, 512), (23, 'conv4_3', 512, 512),
    (25, 'conv4_4', 512, 512), 'pool',
    (28, 'conv5_1', 512, 512), (30, 'conv5_2', 512, 512),
)
CONVS = tuple(l for l in LAYERS if l != 'pool')
CONV_INDICES = tuple(l[0] for l in CONVS)
TAPS = ('conv1_2', 'conv2_2', 'conv3_2', 'conv4_2', 'conv5_2')  # their ReLU outputs are tapped
TAP_NAMES = ('input', 'relu1_2', 'relu2_2', 'relu3_2', 'relu4_2', 'relu5_2')
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


def conv_shapes(convs) -> dict:
  """{torchvision state-dict name: shape} of the 3x3 convs `convs` ((index, name, in, out))."""
  return {**{f'features.{i}.weight': (cout, cin, 3, 3) for i, _, cin, cout in convs},
          **{f'features.{i}.bias': (cout,) for i, _, _, cout in convs}}


ARRAY_SHAPES = conv_shapes(CONVS)


def load_vgg19(path: str) -> dict:
  """Reads the npz (format in the module docstring) into {layer: {'kernel' HWIO, 'bias'}}."""
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'VGG19 weights file {path!r} does not exist. Write it once with the recipe in the '
        'bds_jax/models/vgg.py docstring (torchvision or Keras ImageNet weights), or train '
        'without VGG weights to use the pixel L1 + SSIM likelihood.')
  return convert_arrays(read_npz(path, ARRAY_SHAPES), source=path)


def read_npz(path: str, names, doc: str = 'bds_jax/models/vgg.py', error=ValueError) -> dict:
  """The arrays of `names` that the npz at `path` holds (others are skipped), read without
  unpickling; an unreadable file raises `error` naming it."""
  try:
    npz = np.load(path, allow_pickle=False)
    if not isinstance(npz, np.lib.npyio.NpzFile):
      raise ValueError('it holds a single array, not named arrays')
    with npz:
      return {k: npz[k] for k in npz.files if k in names}
  except (ValueError, OSError, zipfile.BadZipFile) as e:
    raise error(f'{path!r} is not a readable npz of plain numeric arrays ({e}). Write it '
                f'with np.savez as described in {doc}.') from e


def checked(arrays, key: str, shape, source: str, label: str = '', error=ValueError):
  """arrays[key] as float32 after checking its shape and that it holds finite floats."""
  a = np.asarray(arrays[key])
  if a.shape != tuple(shape):
    raise error(f'{source}: array {key!r}{label} has shape {a.shape}, expected '
                f'{tuple(shape)} (torchvision layout, weights OIHW).')
  if not np.issubdtype(a.dtype, np.floating) or not np.all(np.isfinite(a)):
    raise error(f'{source}: array {key!r}{label} must hold finite floats, got dtype {a.dtype}.')
  return a.astype(np.float32)


def convert_arrays(arrays, source: str = 'arrays', convs=CONVS, net: str = 'vgg19',
                   doc: str = 'bds_jax/models/vgg.py', error=ValueError) -> dict:
  """Checks torchvision-named OIHW arrays of `convs` (default: VGG19's, up to conv5_2) and
  converts them to the HWIO pytree."""
  shapes = conv_shapes(convs)
  missing = [k for k in shapes if k not in arrays]
  if missing:
    raise error(
        f'{source}: missing {net.upper()} array(s) {", ".join(missing)}. Expected torchvision '
        f"`{net}().features` state-dict names ('features.{convs[0][0]}.weight' ... "
        f"'features.{convs[-1][0]}.bias'); see {doc}.")
  weights = {}
  for i, name, _, _ in convs:
    layer = {part: checked(arrays, f'features.{i}.{part}', shapes[f'features.{i}.{part}'],
                           source, f' ({name})', error) for part in ('weight', 'bias')}
    weights[name] = {'kernel': jnp.asarray(layer['weight'].transpose(2, 3, 1, 0)),
                     'bias': jnp.asarray(layer['bias'])}
  return weights


def normalize_input(images):
  """[-1, 1] images -> ImageNet-normalised (the network's input and the pixel-term space)."""
  x01 = (images + 1.0) * 0.5
  return (x01 - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)


def vgg19_features(weights: dict, images) -> tuple:
  """NHWC images in [-1, 1] -> (normalised input, relu1_2, ..., relu5_2), NHWC float32."""
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f'vgg19_features expects NHWC RGB images, got shape {images.shape}.')
  if images.shape[1] % 16 or images.shape[2] % 16:
    raise ValueError(f'vgg19_features needs height and width divisible by 16 (four 2x2 '
                     f'max-pools before relu5_2), got {images.shape[1:3]}.')
  h = normalize_input(images.astype(jnp.float32))
  return (h, *conv_stack(weights, h, LAYERS, TAPS))


def max_pool_2x2(h):
  """2x2 max-pool, stride 2, an odd last row/column dropped (torch's floor).

  A max over a reshape rather than reduce_window: the same values, and its gradient is an
  elementwise mask instead of XLA:CPU's select-and-scatter, which was 2.3x slower. On exact
  ties the gradient is split equally (torch gives it to the first); after a ReLU the only
  common ties are zeros, whose gradient the ReLU stops either way.
  """
  n, hh, ww, c = h.shape
  h = h[:, :hh // 2 * 2, :ww // 2 * 2]
  return jnp.max(h.reshape(n, hh // 2, 2, ww // 2, 2, c), axis=(2, 4))


def conv_stack(weights: dict, h, layers, taps) -> list:
  """Runs `layers` (3x3 conv + ReLU entries and 'pool' = 2x2 max-pool, floor as torch's) on
  NHWC `h`; returns the ReLU outputs of the convs named in `taps`."""
  out = []
  for layer in layers:
    if layer == 'pool':
      h = max_pool_2x2(h)
      continue
    name = layer[1]
    h = jax.lax.conv_general_dilated(h, weights[name]['kernel'], (1, 1), ((1, 1), (1, 1)),
                                     dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    h = jax.nn.relu(h + weights[name]['bias'])
    if name in taps:
      out.append(h)
  return out


def random_arrays(seed: int = 0, convs=CONVS) -> dict:
  """Randomly initialised arrays in the npz format (He-normal weights, zero biases): for tests
  and smoke runs, which must not need the real weights."""
  rng = np.random.default_rng(seed)
  out = {}
  for i, _, cin, cout in convs:
    std = (2.0 / (9 * cin))**0.5
    out[f'features.{i}.weight'] = (rng.standard_normal((cout, cin, 3, 3)) * std).astype(
        np.float32)
    out[f'features.{i}.bias'] = np.zeros((cout,), np.float32)
  return out


def caffe_to_torchvision_input(arrays: dict) -> dict:
  """Folds Caffe's input convention (BGR, 0-255, mean-subtracted; Keras VGG19) into conv1_1 so
  that it takes ImageNet-normalised RGB like torchvision's. Returns a new dict.

  With x01 = std·x + mean, the Caffe input of colour c is 255·std_c·x_c + 255·mean_c −
  caffe_mean_c: scale the (RGB-reordered) input channels of the kernel by 255·std and add the
  constant's response to the bias. Exact away from the zero-padded border.
  """
  out = dict(arrays)
  w = np.asarray(arrays['features.0.weight'], np.float64)[:, ::-1]  # BGR -> RGB inputs
  mean, std = np.asarray(IMAGENET_MEAN), np.asarray(IMAGENET_STD)
  shift = 255.0 * mean - np.asarray(CAFFE_BGR_MEAN)[::-1]
  out['features.0.bias'] = (np.asarray(arrays['features.0.bias'], np.float64) +
                            np.einsum('oihw,i->o', w, shift)).astype(np.float32)
  out['features.0.weight'] = (w * (255.0 * std)[None, :, None, None]).astype(np.float32)
  return out
