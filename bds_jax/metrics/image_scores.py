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
* FID: the Fréchet distance (bds_jax.metrics.fid) between the 2048-d pool features of real
  and generated crops. Upstream implemented it but never called it. Being torchvision's
  Inception again, it is not the standard TF-Inception FID either.
"""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

from bds_jax.metrics import fid as fid_lib


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


def frechet_distance(real_features, generated_features) -> float:
  """FID between two (N, 2048) pool-feature sets (N >= 2 each).

  With fewer images than features (a quick evaluation) the same quantity is computed in the
  images' space, exactly: with centred features A (n1, F) and B (n2, F), Σ1 = AᵀA / (n1 − 1),
  Σ2 = BᵀB / (n2 − 1), the nonzero eigenvalues of Σ1^½ Σ2 Σ1^½ are those of (A Bᵀ)(A Bᵀ)ᵀ
  / ((n1 − 1)(n2 − 1)), so Tr((Σ1 Σ2)^½) is the sum of the singular values of A Bᵀ over
  √((n1 − 1)(n2 − 1)): an (n1, n2) SVD instead of two (F, F) eigendecompositions.
  Otherwise `bds_jax.metrics.fid` computes it.
  """
  a = np.asarray(real_features, np.float64)
  b = np.asarray(generated_features, np.float64)
  if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
    raise ValueError(f'FID needs two (N >= 2, F) feature sets, got {a.shape} and {b.shape}.')
  if min(len(a), len(b)) > a.shape[1]:
    return fid_lib.fid_from_features(a, b)
  if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
    raise ValueError('FID: non-finite features (NaN or inf images?).')
  mu_a, mu_b = a.mean(0), b.mean(0)
  ca, cb = a - mu_a, b - mu_b
  na, nb = len(a) - 1, len(b) - 1
  trace_covmean = np.sum(np.linalg.svd(ca @ cb.T, compute_uv=False)) / np.sqrt(na * nb)
  diff = mu_a - mu_b
  d = diff @ diff + np.sum(ca * ca) / na + np.sum(cb * cb) / nb - 2.0 * trace_covmean
  return float(max(d, 0.0))


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
