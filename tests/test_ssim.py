"""Our SSIM (bds_jax.models.appearance_losses.ssim) is scikit-image's structural_similarity
with upstream's settings (spec §5.7: Gaussian weights, σ 1.5, population covariances), and
dm_pix's ssim, on images with textures, edges and several distortions."""

import numpy as np
import pytest

from bds_jax.models import appearance_losses as al

skimage_metrics = pytest.importorskip('skimage.metrics')


def _pairs():
  """(reference, distorted) float images in [0, 1], (N, 48, 56, 3), and a mix of distortions."""
  rng = np.random.default_rng(0)
  h, w = 48, 56
  y, x = np.mgrid[:h, :w] / 8.0
  base = np.stack([0.5 + 0.4 * np.sin(x + c) * np.cos(0.7 * y - c) for c in range(3)], -1)
  base[10:30, 20:40] = (0.9, 0.2, 0.1)  # a flat patch with sharp edges
  refs, dists = [], []
  for i, kind in enumerate(('noise', 'shift', 'contrast', 'blocks')):
    ref = np.clip(base + 0.05 * rng.standard_normal(base.shape), 0, 1)
    if kind == 'noise':
      d = ref + 0.1 * rng.standard_normal(ref.shape)
    elif kind == 'shift':
      d = np.roll(ref, (2, -3), axis=(0, 1))
    elif kind == 'contrast':
      d = 0.5 + 0.6 * (ref - 0.5) + 0.02 * i
    else:
      d = ref.copy()
      d[::8] = rng.uniform(size=d[::8].shape)
    refs.append(ref)
    dists.append(np.clip(d, 0, 1))
  return np.stack(refs).astype(np.float32), np.stack(dists).astype(np.float32)


def _skimage(a, b, data_range):
  return np.array([skimage_metrics.structural_similarity(
      x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
      data_range=data_range, channel_axis=-1) for x, y in zip(a, b)])


@pytest.mark.parametrize('data_range', [1.0, 255.0])
def test_matches_scikit_image(data_range):
  refs, dists = _pairs()
  refs, dists = refs * data_range, dists * data_range
  ours = np.asarray(al.ssim(refs, dists, data_range=data_range))
  expected = _skimage(refs.astype(np.float64), dists.astype(np.float64), data_range)
  assert np.ptp(expected) > 0.1  # the distortions span a range of scores
  np.testing.assert_allclose(ours, expected, rtol=2e-4)
  np.testing.assert_allclose(np.asarray(al.ssim(refs, refs, data_range=data_range)), 1.0,
                             rtol=1e-5)


def test_matches_dm_pix():
  dm_pix = pytest.importorskip('dm_pix')
  refs, dists = _pairs()
  expected = np.asarray(dm_pix.ssim(refs, dists, max_val=1.0, filter_size=11,
                                    filter_sigma=1.5, k1=0.01, k2=0.03))
  np.testing.assert_allclose(np.asarray(al.ssim(refs, dists)), expected, rtol=2e-4)
