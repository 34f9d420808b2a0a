"""Shape-and-posture (appearance) model: upstream `VunetAlter` (reference spec §4.2), NHWC.

A conditional U-Net VAE. The posture stream (`pose_up`, upstream DecUp) encodes the target's
stickman into skip features at every scale; the appearance encoder (`app_up` + `app_down`,
upstream EncUp + EncDownAlter) encodes an image of the person into Gaussian latents at the two
coarsest scales; the decoder (`decoder`, upstream DecDownAlter) walks the posture skips back up
to full resolution, injecting the appearance latents at those two scales, and outputs an RGB
image in [-1, 1] (no output nonlinearity; the target is in [-1, 1]).

Sizes (spec §4.1): n_scales = 1 + log2(image_size) - bottleneck_factor; scale s (0 = full
resolution) has min(nf_start·2^s, nf_max) channels and 2 residual blocks. The appearance input
is the image itself (3 channels, n_scales scales) or, with in-plane normalisation, its 10 part
crops stacked to 30 channels at image_size / 2^box_factor (n_scales - box_factor scales, so
both streams end at the same bottleneck). Upstream's rule: more than 3 input channels means
part crops. The posture stream always sees the full-size 3-channel stickman.

  dataset       image_size  bottleneck_factor  box_factor  appearance input  latents (H, W, C)
  H3.6M         256         2                  2 (unused)  image, 3 ch        (4,4,128), (8,8,128)
  DeepFashion   256         2                  2           crops, 30 ch, 64²  (4,4,128), (8,8,128)
  Market1501    128         1                  1           crops, 30 ch, 64²  (2,2,128), (4,4,128)

(configs/appearance.py's presets; the constructor's defaults are H3.6M's.) Latent scale i = 0
is the bottleneck, i = 1 the next finer scale. Per latent scale: mu = Conv3x3(h), log sigma =
lo + (hi - lo) · sigmoid(Conv3x3(h)) with `logstd_range` (lo, hi) = (0, 1) as upstream (sigma
in (1, e); the paper does not say; `sigmoid_logstd=False` gives the raw conv output), z = mu +
sigma·eps, and z feeds the encoder's next block, so scale 1 depends on scale 0's z.

Deviations from upstream, each behaviour-neutral:
  * After the last latent scale upstream's appearance encoder runs three more modules whose
    output nothing reads (the block taking [skip, z], an Upsample and a final residual block
    with one more skip); they never get a gradient and are omitted.
  * Without a key (evaluation, transfer) the encoder passes mu, not a sample, to its next block
    as well as to the decoder; upstream's eval-mode choice there is unknown (spec [?]).

One addition, off by default (`part_warp`, not in the paper): with part crops as the
appearance input, the `stickman` input also carries the target's per-pixel crop coordinates
(3 more channels per part, bds_jax/imaging/part_map.py), and the posture stream reads the
stickman beside the appearance crops sampled into the target pose (models/part_warp.py: RGB
and an inside-mask per part). Colours and patterns then reach the decoder at the pixels where
they belong, at every scale through the posture skips, besides through the global latents.
With `part_blend` as well, the decoder also outputs P + 1 logits per pixel, and the image is
their softmax's mix of the P warped parts (those inside at that pixel) and its own painting:
it can copy a stripe where the crop shows it and paint where no crop does (occluded sides,
hair, the room). With `room_branch` too, a small U-Net paints the room from the stickman
alone (at a quarter of the resolution, upsampled): it is the image away from the body
(farther than 3 px at 64 px from every part's region in the target pose) and one more
candidate of the mix nearer, so that nothing of the appearance can move the room (the
decoder's painting reads the code, and shifted the room's tint with it). With `room_scene`
as well, the `stickman` input ends with a scene (another frame of the target's camera with
its person cut out; models/part_warp.py SCENE_CHANNELS): the room branch reads it, and the room
is the scene itself wherever it is visible and the branch trusts it (a per-pixel gate), the
branch's painting elsewhere (new; docs/appearance.md).
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

from bds_jax.models import layers
from bds_jax.models import part_warp as part_warp_lib
from bds_jax.models import precision
from bds_jax.models import vunet_blocks as vb

BLOCKS_PER_SCALE = 2  # upstream's; the skip bookkeeping below relies on it


def scale_channels(n_scales: int, nf_start: int, nf_max: int) -> tuple[int, ...]:
  return tuple(min(nf_start * 2**s, nf_max) for s in range(n_scales))


class UpPath(nnx.Module):
  """Upstream EncUp / DecUp: Conv1x1, then per scale 2 residual blocks (outputs kept as skips)
  and a stride-2 Downsample between scales. Returns the 2·n_scales skips, finest first."""

  def __init__(self, in_channels: int, channels: tuple[int, ...], rngs: nnx.Rngs,
               dropout_rate: float, dtype=None):
    self.stem = vb.NormConv2d(in_channels, channels[0], 1, rngs, dtype=dtype)
    self.blocks = nnx.List([
        vb.ResBlock(c, rngs, dropout_rate=dropout_rate, dtype=dtype)
        for c in channels for _ in range(BLOCKS_PER_SCALE)])
    self.downs = nnx.List([vb.Downsample(a, b, rngs, dtype)
                           for a, b in zip(channels[:-1], channels[1:])])
    self.in_channels = in_channels
    self.n_scales = len(channels)
    self.dropout_sites = len(self.blocks)

  def __call__(self, x, keys: vb.KeyStream):
    h = self.stem(x)
    skips = []
    for s in range(self.n_scales):
      for b in range(BLOCKS_PER_SCALE):
        h = self.blocks[s * BLOCKS_PER_SCALE + b](h, key=keys.next())
        skips.append(h)
      if s + 1 < self.n_scales:
        h = self.downs[s](h)
    return skips


class LatentEncoder(nnx.Module):
  """Upstream EncDownAlter: the appearance posterior at the n_latent coarsest scales.

  From the deepest skip: per latent scale, h = RNB(h, skip); (mu, log sigma) = convs of h;
  z = mu + sigma·eps; then, before the next scale, h = RNB(h, concat[skip', z]) (no dropout,
  as upstream) and upsample.
  """

  def __init__(self, channels: tuple[int, ...], n_latent: int, rngs: nnx.Rngs,
               dropout_rate: float, sigmoid_logstd: bool, dtype=None,
               logstd_range: tuple[float, float] = (0.0, 1.0)):
    deep = [channels[len(channels) - 1 - i] for i in range(n_latent)]
    self.stem = vb.NormConv2d(channels[-1], channels[-1], 1, rngs, dtype=dtype)
    self.pre = nnx.List([vb.ResBlock(c, rngs, c, dropout_rate, dtype) for c in deep])
    self.mu = nnx.List([vb.NormConv2d(c, c, 3, rngs, dtype=dtype) for c in deep])
    self.logstd = nnx.List([vb.NormConv2d(c, c, 3, rngs, dtype=dtype) for c in deep])
    # The last scale's block after z is dead upstream (nothing reads its output): omitted.
    self.post = nnx.List([vb.ResBlock(c, rngs, 2 * c, 0.0, dtype) for c in deep[:-1]])
    self.ups = nnx.List([vb.Upsample(a, b, rngs, dtype) for a, b in zip(deep[:-1], deep[1:])])
    self.n_latent = n_latent
    self.sigmoid_logstd = sigmoid_logstd
    lo, hi = (float(v) for v in logstd_range)
    if not lo < hi:
      raise ValueError(f'model.logstd_range={tuple(logstd_range)}: expected (low, high) with '
                       'low < high.')
    self.logstd_low, self.logstd_span = lo, hi - lo
    self.dropout_sites = n_latent
    self.noise_draws = n_latent

  def __call__(self, skips, keys: vb.KeyStream, sample: bool):
    skips = list(skips)
    h = self.stem(skips[-1])
    means, logstds, zs = [], [], []
    for i in range(self.n_latent):
      h = self.pre[i](h, skips.pop(), key=keys.next())
      mu = self.mu[i](h)
      logstd = self.logstd[i](h)
      if self.sigmoid_logstd:  # upstream: range (0, 1), sigma in (1, e)
        logstd = self.logstd_low + self.logstd_span * jax.nn.sigmoid(logstd)
      z = mu
      if sample:
        z = mu + jnp.exp(logstd) * jax.random.normal(keys.next(), mu.shape, mu.dtype)
      means.append(mu)
      logstds.append(logstd)
      zs.append(z)
      if i + 1 < self.n_latent:
        h = self.post[i](h, jnp.concatenate([skips.pop(), z], axis=-1))  # no dropout
        h = self.ups[i](h)
    return means, logstds, zs


class Decoder(nnx.Module):
  """Upstream DecDownAlter: per scale (coarsest first) RNB(h, pose skip), RNB(h, z_i) at the
  latent scales, RNB(h, pose skip), Upsample; then Conv3x3 to RGB."""

  def __init__(self, channels: tuple[int, ...], latent_channels: tuple[int, ...],
               rngs: nnx.Rngs, dropout_rate: float, out_channels: int = 3, dtype=None):
    rev = channels[::-1]
    self.stem = vb.NormConv2d(rev[0], rev[0], 1, rngs, dtype=dtype)
    self.first = nnx.List([vb.ResBlock(c, rngs, c, dropout_rate, dtype) for c in rev])
    self.latent = nnx.List([vb.ResBlock(c, rngs, lc, dropout_rate, dtype)
                            for c, lc in zip(rev, latent_channels)])
    self.second = nnx.List([vb.ResBlock(c, rngs, c, dropout_rate, dtype) for c in rev])
    self.ups = nnx.List([vb.Upsample(a, b, rngs, dtype) for a, b in zip(rev[:-1], rev[1:])])
    self.out = vb.NormConv2d(rev[-1], out_channels, 3, rngs, dtype=dtype)
    self.n_scales = len(channels)
    self.dropout_sites = 2 * len(channels) + len(latent_channels)

  def __call__(self, skips, zs, keys: vb.KeyStream):
    skips = list(skips)
    h = self.stem(skips[-1])
    for i in range(self.n_scales):
      h = self.first[i](h, skips.pop(), key=keys.next())
      if i < len(zs):
        h = self.latent[i](h, zs[i], key=keys.next())
      h = self.second[i](h, skips.pop(), key=keys.next())
      if i + 1 < self.n_scales:
        h = self.ups[i](h)
    return self.out(h).astype(jnp.float32)


class AppearanceModel(nnx.Module):
  """(appearance input, stickman) -> (image, means, logstds); see the module docstring.

  Inputs are NHWC in [-1, 1]: `appearance` (B, A, A, appearance_channels) with A = image_size
  (3 channels) or image_size / 2^box_factor (part crops), `stickman` (B, S, S, 3), S =
  image_size. means / logstds / latents are lists, bottleneck first, of (B, h_i, w_i, c_i) =
  `latent_shapes[i]`. compute_dtype 'bfloat16' runs the convolutions in bf16 with float32
  accumulation; parameters and outputs stay float32.
  """

  def __init__(self, rngs: nnx.Rngs, *, image_size: int = 256, bottleneck_factor: int = 2,
               box_factor: int = 2, appearance_channels: int = 3, pose_channels: int = 3,
               nf_start: int = 32, nf_max: int = 128, n_latent_scales: int = 2,
               dropout_rate: float = 0.05, sigmoid_logstd: bool = True,
               logstd_range: tuple[float, float] = (0.0, 1.0), compute_dtype: str = 'float32',
               part_warp: bool = False, part_blend: bool = False, room_branch: bool = False,
               room_scene: bool = False):
    dtype = precision.resolve(compute_dtype)
    if room_scene and not room_branch:
      raise ValueError('model.room_scene gives the room branch a scene to copy the room from: '
                       'it needs model.room_branch=True.')
    if room_branch and not part_blend:
      raise ValueError('model.room_branch adds a room painted from the stickman alone to the '
                       'part blend\'s candidates: it needs model.part_blend=True.')
    if part_blend and not part_warp:
      raise ValueError('model.part_blend mixes the warped part crops into the output: it needs '
                       'model.part_warp=True.')
    if part_warp and appearance_channels <= 3:
      raise ValueError('model.part_warp samples the part crops into the target pose: it needs '
                       'them as the appearance input (data.inplane_normalize=True).')
    if image_size < 2 or image_size & (image_size - 1):
      raise ValueError(f'image_size={image_size!r} must be a power of two (256 for H3.6M and '
                       'DeepFashion, 128 for Market).')
    n_scales = 1 + int(math.log2(image_size)) - bottleneck_factor
    n_app = n_scales - box_factor if appearance_channels > 3 else n_scales
    app_size = image_size // 2**box_factor if appearance_channels > 3 else image_size
    if (min(n_scales, n_app) < max(n_latent_scales, 1) or app_size < 1
        or min(bottleneck_factor, box_factor) < 0):
      raise ValueError(
          f'image_size={image_size}, bottleneck_factor={bottleneck_factor}, box_factor='
          f'{box_factor} give {n_scales} posture and {n_app} appearance scales, fewer than '
          f'n_latent_scales={n_latent_scales}; lower bottleneck_factor or box_factor.')
    pose_ch = scale_channels(n_scales, nf_start, nf_max)
    app_ch = scale_channels(n_app, nf_start, nf_max)
    latent_ch = tuple(app_ch[n_app - 1 - i] for i in range(n_latent_scales))
    bottleneck = image_size // 2**(n_scales - 1)
    self.app_up = UpPath(appearance_channels, app_ch, rngs, dropout_rate, dtype)
    self.app_down = LatentEncoder(app_ch, n_latent_scales, rngs, dropout_rate, sigmoid_logstd,
                                  dtype, logstd_range)
    num_parts = appearance_channels // 3
    stream_channels = (pose_channels + part_warp_lib.out_channels(num_parts) if part_warp
                       else pose_channels)
    self.pose_up = UpPath(stream_channels, pose_ch, rngs, dropout_rate, dtype)
    out_channels = 3 + (num_parts + 1 + int(room_branch) if part_blend else 0)
    self.decoder = Decoder(pose_ch, latent_ch, rngs, dropout_rate, out_channels, dtype=dtype)
    if room_branch:  # a small U-Net on the stickman alone: nothing of the appearance reaches it
      # at a quarter of the resolution (the room is smooth; at full size it cost 15% of a step)
      room_scales = max(1, n_scales - 2)
      self.room_pool = 2**(n_scales - room_scales)
      room_ch = scale_channels(room_scales, max(nf_start // 2, 4), nf_start)
      scene_ch = part_warp_lib.SCENE_CHANNELS if room_scene else 0
      self.room_up = UpPath(pose_channels + scene_ch, room_ch, rngs, dropout_rate, dtype)
      # RGB, and with a scene the logit of trusting it
      self.room_down = Decoder(room_ch, (), rngs, dropout_rate, 3 + int(room_scene), dtype=dtype)
    self.image_size = image_size
    self.appearance_size = app_size
    self.appearance_channels = appearance_channels
    self.pose_channels = pose_channels
    self.part_warp, self.part_blend = bool(part_warp), bool(part_blend)
    self.room_branch, self.room_scene = bool(room_branch), bool(room_scene)
    self.room_margin = max(1, round(3 * image_size / 64))  # px; 3 at 64 px (docs/appearance.md)
    # the `stickman` input: the stickman, then (part_warp) each part's crop coordinates, then
    # (room_scene) the scene
    self.coordinate_channels = part_warp_lib.CHANNELS_PER_PART * num_parts if part_warp else 0
    self.condition_channels = (pose_channels + self.coordinate_channels
                               + (part_warp_lib.SCENE_CHANNELS if room_scene else 0))
    self.n_scales = n_scales
    self.latent_shapes = tuple((bottleneck * 2**i, bottleneck * 2**i, c)
                               for i, c in enumerate(latent_ch))

  def encode(self, appearance, key=None):
    """Appearance posterior: (means, logstds, latents). With `key`, dropout is on and the
    latents are posterior samples (training); without, no dropout and latents = means."""
    return self._encode(appearance, vb.KeyStream(key, self._encode_keys))

  def decode(self, stickman, latents, key=None, appearance=None):
    """Image (B, S, S, 3) of the posture in `stickman` with appearance `latents`; `key`
    switches dropout on. With part_warp, `appearance` is the input the latents came from."""
    return self._decode(stickman, latents, vb.KeyStream(key, self._decode_keys), appearance)

  def __call__(self, appearance, stickman, key=None):
    """Training (with `key`: dropout, sampled latents) or reconstruction / transfer (without:
    latents = means). Returns (image, means, logstds)."""
    keys = vb.KeyStream(key, self._encode_keys + self._decode_keys)
    means, logstds, zs = self._encode(appearance, keys)
    return self._decode(stickman, zs, keys, appearance), means, logstds

  @property
  def _encode_keys(self):
    return self.app_up.dropout_sites + self.app_down.dropout_sites + self.app_down.noise_draws

  @property
  def _decode_keys(self):
    room = (self.room_up.dropout_sites + self.room_down.dropout_sites if self.room_branch
            else 0)
    return self.pose_up.dropout_sites + self.decoder.dropout_sites + room

  def _encode(self, appearance, keys):
    _check_image(appearance, self.appearance_size, self.appearance_channels, 'appearance')
    return self.app_down(self.app_up(appearance, keys), keys, sample=keys.active)

  def _decode(self, stickman, latents, keys, appearance=None):
    _check_image(stickman, self.image_size, self.condition_channels, 'stickman')
    if len(latents) != len(self.latent_shapes):
      raise ValueError(f'got {len(latents)} latents, the model has {len(self.latent_shapes)}.')
    for i, (z, shape) in enumerate(zip(latents, self.latent_shapes)):
      if z.shape[1:] != shape or z.shape[0] != stickman.shape[0]:
        raise ValueError(f'latent {i} has shape {z.shape}; expected (batch={stickman.shape[0]}, '
                         f'{", ".join(map(str, shape))}).')
    if not self.part_warp:
      return self.decoder(self.pose_up(stickman, keys), latents, keys)
    if appearance is None:
      raise ValueError('model.part_warp: decode needs the appearance input (its part crops '
                       'are sampled into the pose).')
    _check_image(appearance, self.appearance_size, self.appearance_channels, 'appearance')
    coordinates = stickman[..., self.pose_channels:self.pose_channels + self.coordinate_channels]
    warped = part_warp_lib.warp_parts(appearance, coordinates)
    stream = jnp.concatenate([stickman[..., :self.pose_channels], warped], axis=-1)
    out = self.decoder(self.pose_up(stream, keys), latents, keys)
    if not self.part_blend:
      return out
    painted = out[..., :3]
    if not self.room_branch:
      return part_warp_lib.blend(painted, out[..., 3:], warped)
    scene = stickman[..., -part_warp_lib.SCENE_CHANNELS:] if self.room_scene else None
    room = self.paint_room(stickman[..., :self.pose_channels], keys, scene)
    mixed = part_warp_lib.blend(jnp.concatenate([painted, room], axis=-1), out[..., 3:], warped)
    # Away from the body (farther than room_margin from every part's region in the target
    # pose) the image is the room branch's alone; nearer, the mix decides, so the person's
    # edges and loose clothes stay the decoder's.
    near = part_warp_lib.near_parts(coordinates, self.room_margin)
    return jnp.where(near, mixed, room)

  def paint_room(self, pose, keys: vb.KeyStream, scene=None):
    """model.room_branch: the room (B, S, S, 3, float32) painted from the stickman drawing
    `pose` (B, S, S, pose_channels) alone, at S / room_pool and upsampled bilinearly; with
    model.room_scene, from `scene` too, which it is wherever visible and trusted."""
    b, s, f = pose.shape[0], self.image_size, self.room_pool
    x = pose if scene is None else jnp.concatenate([pose, scene.astype(pose.dtype)], axis=-1)
    small = x.reshape(b, s // f, f, s // f, f, -1).mean(axis=(2, 4))
    room = self.room_down(self.room_up(small, keys), [], keys)
    room = jax.image.resize(room, (b, s, s, room.shape[-1]), 'linear')
    if scene is None:
      return room
    return part_warp_lib.scene_room(scene, room[..., :3], room[..., 3:])

  def prior_latents(self, key, batch: int):
    """N(0, I) latents for appearance sampling (upstream `test_forward`)."""
    return [jax.random.normal(jax.random.fold_in(key, i), (batch, *shape))
            for i, shape in enumerate(self.latent_shapes)]


class KeypointRegressor(nnx.Module):
  """Adversary (upstream `models/vunets.Regressor`): appearance means -> 2D keypoints.

  Each mean gets a valid conv whose kernel covers it (upstream: kernel 4 on the 4x4
  bottleneck, 8 on the 8x8 scale; at Market's 2x2/4x4 latents the kernels are 2 and 4) to
  conv_channels, ReLU; the concatenation goes through Linear -> ReLU -> Linear(2·J). Plain
  (not weight-normalised) layers with PyTorch's default initialisation. Output (B, J, 2).
  """

  def __init__(self, latent_shapes, num_keypoints: int, rngs: nnx.Rngs,
               conv_channels: int = 128, hidden: int = 128):
    self.convs = nnx.List([_torch_conv(c, conv_channels, (h, w), rngs)
                           for h, w, c in latent_shapes])
    self.hidden = layers.torch_linear(conv_channels * len(latent_shapes), hidden, rngs)
    self.head = layers.torch_linear(hidden, 2 * num_keypoints, rngs)
    self.latent_shapes = tuple(tuple(s) for s in latent_shapes)
    self.num_keypoints = num_keypoints

  def __call__(self, means):
    if tuple(m.shape[1:] for m in means) != self.latent_shapes:
      raise ValueError(f'regressor built for latents {self.latent_shapes}, got '
                       f'{[m.shape[1:] for m in means]}.')
    feats = [jax.nn.relu(conv(m)).reshape(m.shape[0], -1) for conv, m in zip(self.convs, means)]
    h = jax.nn.relu(self.hidden(jnp.concatenate(feats, axis=-1)))
    return self.head(h).reshape(-1, self.num_keypoints, 2)


def _torch_conv(cin: int, cout: int, kernel, rngs: nnx.Rngs) -> nnx.Conv:
  bound = 1.0 / (cin * kernel[0] * kernel[1])**0.5
  init = lambda key, shape, dtype=jnp.float32: layers.uniform(key, shape, bound, dtype)
  return nnx.Conv(cin, cout, kernel, padding='VALID', kernel_init=init, bias_init=init,
                  rngs=rngs)


def _check_image(x, size: int, channels: int, what: str):
  if x.ndim != 4 or x.shape[1:] != (size, size, channels):
    raise ValueError(f'{what}: expected NHWC shape (batch, {size}, {size}, {channels}) in '
                     f'[-1, 1], got {x.shape}. Check image_size, box_factor and '
                     'appearance_channels against the data.')
