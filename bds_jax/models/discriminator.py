"""A conditional patch discriminator for the appearance model (new; not in the paper or code).

Without pretrained VGG weights the appearance likelihood is pixel L1 + SSIM, which a blurred
mean colour satisfies well. Pose-guided synthesis methods add an adversarial loss on patches,
conditioned on the pose, and a feature-matching loss on the discriminator's features
(pix2pixHD). Here: the image and its stickman, concatenated (6 channels), go through
`num_layers` stride-2 4x4 convolutions (LeakyReLU 0.2) and a 3x3 convolution to one logit per
patch. Trained with the hinge loss; the appearance model gets -mean(D(fake)) and the L1
between D's features of its output and of the real image (`appearance_losses.gan_terms`).
No normalisation layers: every patch's logit depends on that image only.
"""

import jax
import jax.numpy as jnp
from flax import nnx


class PatchDiscriminator(nnx.Module):
  """(image, stickman) NHWC in [-1, 1] -> (patch logits (B, h, w, 1), [features per layer])."""

  def __init__(self, rngs: nnx.Rngs, channels: int = 32, num_layers: int = 3,
               in_channels: int = 6):
    widths = [min(channels * 2**i, 8 * channels) for i in range(num_layers)]
    self.convs = nnx.List([
        nnx.Conv(cin, cout, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)), rngs=rngs)
        for cin, cout in zip([in_channels] + widths[:-1], widths)])
    self.head = nnx.Conv(widths[-1], 1, (3, 3), padding='SAME', rngs=rngs)
    self.in_channels = in_channels

  def __call__(self, image, stickman):
    # the stickman drawing only: with model.part_warp its part coordinates follow it
    h = jnp.concatenate([image, stickman[..., :3]], axis=-1).astype(jnp.float32)
    if h.shape[-1] != self.in_channels:
      raise ValueError(f'discriminator built for {self.in_channels} input channels (image + '
                       f'stickman), got {h.shape[-1]}.')
    features = []
    for conv in self.convs:
      h = jax.nn.leaky_relu(conv(h), 0.2)
      features.append(h)
    return self.head(h), features
