"""Building blocks of the appearance VUnet (reference spec §4.1), NHWC throughout.

Upstream builds every convolution as a `NormConv2d` (`conv_layer_type: l1`): a weight-normalised
convolution with bias followed by a learned per-channel affine. Blocks:
  * ResBlock (upstream `VunetRNB`): y = x + Conv3x3(Dropout(ELU(concat[x, Conv1x1(ELU(a))])))
    with a skip input a, or y = x + Conv3x3(Dropout(ELU(x))) without one;
  * Downsample: Conv3x3, stride 2, padding 1 (PyTorch's symmetric padding, not XLA's 'SAME',
    which would pad (0, 1) at stride 2);
  * Upsample (subpixel): Conv3x3 to 4·C_out channels, then depth-to-space with block 2.

Subpixel channel order (spec §4.1). Upstream, although a PyTorch model, uses TensorFlow's
`depth_to_space` order (DCR, as ONNX calls it): output pixel (2h + i, 2w + j, c) reads input
channel (2i + j)·C_out + c. PyTorch's `pixel_shuffle` is CRD: it reads channel 4c + 2i + j.
The two agree only for one output channel, so DCR (the default) is what upstream's Upsample
weights expect; `order='CRD'` is there to compare and convert.

Initialisation is PyTorch's default (U(±1/√fan_in) for weights and biases), with the
weight-norm gain starting at ‖v‖ and the affine at identity, so a fresh NormConv2d is a plain
convolution, as upstream's.
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

from bds_jax.models import layers
from bds_jax.models import precision

DEPTH_TO_SPACE_ORDERS = ('DCR', 'CRD')


class NormConv2d(nnx.Module):
  """Weight-normalised 2D convolution + bias, then gamma·(.) + beta per output channel.

  Kernel layout HWIO; W = g · v / ‖v‖ with the norm over (H, W, I) for each output channel.
  Padding defaults to kernel_size // 2 on every side (PyTorch's `padding=1` for 3x3).
  """

  def __init__(self, in_channels: int, out_channels: int, kernel_size: int, rngs: nnx.Rngs,
               stride: int = 1, padding: int | None = None, dtype=None):
    fan_in = in_channels * kernel_size * kernel_size
    bound = 1.0 / fan_in**0.5
    v = layers.uniform(rngs.params(), (kernel_size, kernel_size, in_channels, out_channels),
                       bound)
    self.v = nnx.Param(v)
    self.g = nnx.Param(jnp.sqrt(jnp.sum(jnp.square(v), axis=(0, 1, 2))))
    self.bias = nnx.Param(layers.uniform(rngs.params(), (out_channels,), bound))
    self.gamma = nnx.Param(jnp.ones((out_channels,)))
    self.beta = nnx.Param(jnp.zeros((out_channels,)))
    self.in_channels = in_channels
    self.stride = stride
    self.padding = kernel_size // 2 if padding is None else padding
    self.dtype = dtype

  def __call__(self, x):
    if x.shape[-1] != self.in_channels:
      raise ValueError(f'NormConv2d expects {self.in_channels} input channels (NHWC), got an '
                       f'input of shape {x.shape}.')
    v = self.v[...]
    w = v * (self.g[...] / jnp.sqrt(jnp.sum(jnp.square(v), axis=(0, 1, 2))))
    p = self.padding
    y = jax.lax.conv_general_dilated(
        precision.cast(x, self.dtype), precision.cast(w, self.dtype),
        window_strides=(self.stride, self.stride), padding=((p, p), (p, p)),
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
        preferred_element_type=precision.accumulation(self.dtype))
    return self.gamma[...] * (y + self.bias[...]) + self.beta[...]


class KeyStream:
  """Hands out one key per call (dropout masks, posterior noise), or None when off (key None).

  All keys come from one draw from the caller's key and are 'rbg' keys, so each mask is one
  XLA RngBitGenerator op: with threefry bits at each of the ~40 dropout sites, compiling the
  model on XLA:CPU took several times longer. rbg bits are deterministic for a given key and
  backend (not necessarily across backends), which is all dropout needs.
  """

  def __init__(self, key, count: int):
    self._keys = None
    if key is not None:
      data = jax.random.bits(key, (count, 4), jnp.uint32)
      self._keys = jax.random.wrap_key_data(data, impl='rbg')
    self._count = count
    self._used = 0

  @property
  def active(self) -> bool:
    return self._keys is not None

  def next(self):
    if self._keys is None:
      return None
    if self._used >= self._count:
      raise RuntimeError(f'KeyStream: more than the {self._count} keys it was sized for.')
    self._used += 1
    return self._keys[self._used - 1]


def _fmix32(h):
  """MurmurHash3's 32-bit finaliser: a bijection of uint32 with full avalanche."""
  h = h ^ (h >> 16)
  h = h * jnp.uint32(0x85EBCA6B)
  h = h ^ (h >> 13)
  h = h * jnp.uint32(0xC2B2AE35)
  return h ^ (h >> 16)


def hashed_bits(key, shape) -> jax.Array:
  """uint32 bits of `shape`: two finaliser rounds over the element index, seeded by two words
  of the key's data.

  Why not jax.random.bits: XLA:CPU expands RngBitGenerator (and threefry) into code that took
  ~9 ns per element, 15% of the train step at 128² for the ~40 dropout masks; this hash is
  ~70x faster and plenty for Bernoulli masks (tests check rate and independence). Masks are
  deterministic per key, as before, but not the bits jax.random would draw.
  """
  words = jax.random.key_data(key).reshape(-1).astype(jnp.uint32)
  size = math.prod(shape)
  if size >= 2**32:
    raise ValueError(f'hashed_bits: {size} elements do not fit a uint32 counter.')
  i = jax.lax.iota(jnp.uint32, size).reshape(shape)
  return _fmix32(_fmix32(i * jnp.uint32(0x9E3779B9) + words[0]) ^ words[-1])


def dropout(x, rate: float, key):
  """Inverted dropout as torch.nn.Dropout in train mode; identity when key is None.

  Element kept when its hashed bits fall below (1 - rate)·2³²."""
  if key is None or rate == 0.0:
    return x
  threshold = jnp.uint32(min(round((1.0 - rate) * 2.0**32), 2**32 - 1))
  keep = hashed_bits(key, x.shape) < threshold
  return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


class ResBlock(nnx.Module):
  """Upstream `VunetRNB`: a residual block with an optional skip input (skip_channels > 0)."""

  def __init__(self, channels: int, rngs: nnx.Rngs, skip_channels: int = 0,
               dropout_rate: float = 0.05, dtype=None):
    self.skip = (NormConv2d(skip_channels, channels, 1, rngs, dtype=dtype)
                 if skip_channels else None)
    inner = 2 * channels if skip_channels else channels
    self.conv = NormConv2d(inner, channels, 3, rngs, dtype=dtype)
    self.channels = channels
    self.skip_channels = skip_channels
    self.dropout_rate = dropout_rate

  def __call__(self, x, a=None, key=None):
    if (a is None) != (self.skip is None):
      raise ValueError(f'ResBlock built with skip_channels={self.skip_channels} was called '
                       f'{"without" if a is None else "with"} a skip input.')
    h = x
    if a is not None:
      h = jnp.concatenate([x, self.skip(jax.nn.elu(a))], axis=-1)
    h = dropout(jax.nn.elu(h), self.dropout_rate, key)
    return x + self.conv(h)


class Downsample(nnx.Module):
  """Conv3x3, stride 2, padding 1: halves H and W."""

  def __init__(self, in_channels: int, out_channels: int, rngs: nnx.Rngs, dtype=None):
    self.conv = NormConv2d(in_channels, out_channels, 3, rngs, stride=2, padding=1, dtype=dtype)

  def __call__(self, x):
    if x.shape[1] % 2 or x.shape[2] % 2:
      raise ValueError(f'Downsample needs even height and width, got an input of shape '
                       f'{x.shape}; use a power-of-two image size.')
    return self.conv(x)


def depth_to_space(x, block: int = 2, order: str = 'DCR'):
  """(B, H, W, b²·C) -> (B, b·H, b·W, C).

  'DCR' (TensorFlow, upstream): output (b·h + i, b·w + j, c) <- channel (b·i + j)·C + c.
  'CRD' (PyTorch pixel_shuffle): output (b·h + i, b·w + j, c) <- channel b²·c + b·i + j.
  """
  n, h, w, d = x.shape
  if d % (block * block):
    raise ValueError(f'depth_to_space: {d} channels are not divisible by block²={block**2}.')
  c = d // (block * block)
  if order == 'DCR':
    y = x.reshape(n, h, w, block, block, c)            # (.., i, j, c)
  elif order == 'CRD':
    y = x.reshape(n, h, w, c, block, block).transpose(0, 1, 2, 4, 5, 3)
  else:
    raise ValueError(f'depth_to_space order={order!r} is not one of {DEPTH_TO_SPACE_ORDERS}.')
  return y.transpose(0, 1, 3, 2, 4, 5).reshape(n, h * block, w * block, c)


class Upsample(nnx.Module):
  """Subpixel upsampling: Conv3x3 to 4·C_out, then depth-to-space (DCR, as upstream)."""

  def __init__(self, in_channels: int, out_channels: int, rngs: nnx.Rngs, dtype=None,
               order: str = 'DCR'):
    if order not in DEPTH_TO_SPACE_ORDERS:
      raise ValueError(f'Upsample order={order!r} is not one of {DEPTH_TO_SPACE_ORDERS}.')
    self.conv = NormConv2d(in_channels, 4 * out_channels, 3, rngs, dtype=dtype)
    self.order = order

  def __call__(self, x):
    return depth_to_space(self.conv(x), 2, self.order)
