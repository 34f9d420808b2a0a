"""Image-quality scores of the appearance model (reference spec §5.7, paper Table 5).

* SSIM: `bds_jax.models.appearance_losses.ssim` (Wang et al.'s settings, as upstream's
  scikit-image call; tests/test_ssim.py checks it against scikit-image).
* Inception Score, as upstream's `inception_score`: class probabilities p(y|x) = softmax of
  the Inception-v3 logits (bds_jax/models/inception.py: [-1, 1] input, bilinear to 299),
  IS = exp(E_x KL(p(y|x) || p(y))) with p(y) the mean of p(y|x) over all images (splits = 1).
  At inference upstream scored crops of the keypoint bounding box (kornia crop_and_resize, no
  margin: "IS on masks"); `keypoint_box_crops` does that, straight to the network's 299x299
  input. Note: these numbers use torchvision's Inception, not the TF one of the IS papers, so
  they are not comparable with TF-Inception scores (spec §5.7), only with upstream's.
* FID: the Fréchet distance (`bds_jax.metrics.fid.fid_from_features`) between the 2048-d
  pool features of real and generated crops. Upstream implemented it but never called it.
  Being torchvision's Inception again, it is not the standard TF-Inception FID either.
"""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special


def inception_score(logits) -> float:
  """exp(mean_x KL(p(y|x) || p(y))) over all of (N, classes) logits (upstream: splits = 1)."""
  logits = np.asarray(logits, np.float64)
  if logits.ndim != 2 or len(logits) < 1:
    raise ValueError(f'inception_score expects (N >= 1, classes) logits, got {logits.shape}.')
  log_p = special.log_softmax(logits, axis=-1)
  # log p(y) in the log domain: a class no image predicts has a tiny, not zero, marginal.
  log_py = special.logsumexp(log_p, axis=0) - np.log(len(log_p))
  kl = np.sum(np.exp(log_p) * (log_p - log_py), axis=-1)
  return float(np.exp(np.mean(kl)))


def keypoint_boxes(keypoints, image_size: int):
  """(B, J, 2) pixel keypoints (x, y; negative = missing) -> (B, 4) boxes x0, y0, x1, y1.

  The tight box of the present joints, clipped to the image and at least one pixel wide and
  high; an image with no joint present keeps its whole frame.
  """
  kp = jnp.asarray(keypoints, jnp.float32)
  valid = jnp.all(kp >= 0, axis=-1, keepdims=True)                        # (B, J, 1)
  lo = jnp.min(jnp.where(valid, kp, jnp.inf), axis=1)
  hi = jnp.max(jnp.where(valid, kp, -jnp.inf), axis=1)
  none = ~jnp.any(valid[..., 0], axis=1, keepdims=True)
  last = image_size - 1.0
  lo = jnp.where(none, 0.0, jnp.clip(lo, 0.0, last))
  hi = jnp.where(none, last, jnp.clip(hi, 0.0, last))
  centre = 0.5 * (lo + hi)
  half = jnp.maximum(0.5 * (hi - lo), 0.5)
  return jnp.concatenate([centre - half, centre + half], axis=-1)


def keypoint_box_crops(images, keypoints, size: int):
  """NHWC images -> (B, size, size, C): each keypoint box resampled bilinearly.

  Like kornia's crop_and_resize (which upstream used), the box's corner pixels map to the
  output's corner pixels; samples outside the image take the nearest edge value.
  """
  b, h, w, _ = images.shape
  if h != w:
    raise ValueError(f'keypoint_box_crops expects square images, got {images.shape[1:3]}.')
  boxes = keypoint_boxes(keypoints, h)
  t = jnp.linspace(0.0, 1.0, size)

  def crop(image, box):
    ys = box[1] + t * (box[3] - box[1])
    xs = box[0] + t * (box[2] - box[0])
    yy, xx = jnp.meshgrid(ys, xs, indexing='ij')
    channel = lambda ch: jax.scipy.ndimage.map_coordinates(ch, [yy, xx], order=1,
                                                           mode='nearest')
    return jax.vmap(channel, in_axes=-1, out_axes=-1)(image)

  del b
  return jax.vmap(crop)(images.astype(jnp.float32), boxes)
