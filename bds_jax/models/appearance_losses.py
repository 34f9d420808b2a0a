"""Losses of the appearance model (reference spec §4.3), as pure functions.

Main objective (upstream code), differentiated w.r.t. the appearance model only:
  L = ll_weight · L_ll + [step >= n_init_batches] · gamma · KL − w · min(L_reg, 1.2)
  * L_ll, the perceptual likelihood: sum over six taps of weight · mean |f(x̂) − f(x)|, the
    taps being the ImageNet-normalised image (a pixel L1; [P] says MSE, the code L1) and VGG19
    relu1_2 ... relu5_2 (bds_jax/models/vgg.py), all weights 1. Without VGG weights the
    fallback is |x̂ − x| (in [-1, 1]) + ssim_weight · (1 − SSIM) (ours, not upstream's).
  * KL: per latent scale, the batch mean of Σ_{C,H,W} (−log σ + ½(σ² + μ²)) − ½·dim, then the
    mean of the scales. gamma follows dual ascent towards the information budget (1000).
    KL enters "after iteration n_init_batches = 4" (spec): `step` counts completed updates,
    so the 5th update is the first with KL (the exact comparison upstream is not known);
    gamma stays put until then.
  * L_reg: the keypoint regressor's loss on the appearance means, the batch mean of the
    (unsquared) L2 norm of the 2·J-vector of errors; targets in [0, 1]. The clamp stops the
    encoder's adversarial gradient once the regressor is that bad: by default at chance (the
    mean-pose error, `chance_keypoint_l2`); upstream's 1.2 sat far above it. The regressor's
    parameters are held fixed here (stop_gradient), so this term trains only the encoder.
    Upstream computed these means under no_grad, so its adversarial term carried no gradient
    at all (spec §7.11, a no-op); here it reaches the appearance encoder through the means.

The regressor trains on its own loss (`regressor_loss`) with the means as data, with a second
optimizer; a trainer alternates the two (upstream: 5 regressor Adam steps at lr 1e-3 per main
step, each on the means of another image of the same person).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from bds_jax.models import vgg
from bds_jax.models.objectives import dual_ascent

SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03  # Wang et al. (2004)


@dataclasses.dataclass(frozen=True)
class LossConfig:
  """Upstream's values (config/shape_and_pose_net.yaml; spec §4.3-4.4)."""
  likelihood_weights: tuple[float, ...] = (1.0,) * 6  # input, relu1_2 ... relu5_2
  ll_weight: float = 1.0
  ssim_weight: float = 1.0        # the no-VGG fallback only
  n_init_batches: int = 4
  info_budget: float = 1000.0
  gamma_step: float = 1e-5
  adversary_weight: float = 4.0   # [P]: gamma_C = 1 (H3.6M, Market), 5 (DeepFashion)
  adversary_clamp: float = 1.2     # the run's: its config's, or the chance level (trainer)
  person_weight: float = 1.0       # the likelihood's weight on the person's pixels (1: upstream)
  gan_weight: float = 0.0          # the patch discriminator's hinge term (0: no discriminator)
  feature_matching_weight: float = 0.0  # L1 between its features of output and image


def weighted_mean(x, weight=None):
  """Mean of NHWC `x`; with `weight` (B, H, W, 1), at any multiple of x's resolution, the
  weighted mean (the weight average-pooled to x's H and W), over the channels too."""
  if weight is None:
    return jnp.mean(x)
  b, h, w, _ = x.shape
  fh, fw = weight.shape[1] // h, weight.shape[2] // w
  weight = jnp.mean(weight.reshape(b, h, fh, w, fw, 1), axis=(2, 4)).astype(x.dtype)
  return jnp.sum(x * weight) / (x.shape[-1] * jnp.maximum(jnp.sum(weight), 1e-6))


def perceptual_loss(vgg_weights, pred, target, weights=(1.0,) * 6, pixel_weight=None):
  """(Σ_k w_k · mean |f_k(pred) − f_k(target)|, the six unweighted terms (6,)); with
  `pixel_weight` (B, H, W, 1) each mean is weighted by it, pooled to the tap's resolution."""
  if len(weights) != len(vgg.TAP_NAMES):
    raise ValueError(f'likelihood_weights has {len(weights)} entries; the perceptual loss has '
                     f'{len(vgg.TAP_NAMES)} terms {vgg.TAP_NAMES}.')
  # Two passes, not one over [pred; target]: in one pass the backward pass ran through the
  # target half too (XLA cannot split a batch), 10% of the train step at 128² for nothing.
  pred_taps = vgg.vgg19_features(vgg_weights, pred)
  target_taps = vgg.vgg19_features(vgg_weights, jax.lax.stop_gradient(target))
  terms = jnp.stack([weighted_mean(jnp.abs(fp - jax.lax.stop_gradient(ft)), pixel_weight)
                     for fp, ft in zip(pred_taps, target_taps)])
  return jnp.dot(jnp.asarray(weights, jnp.float32), terms), terms


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA):
  """Normalised 1D Gaussian taps (skimage's gaussian_weights=True: truncate 3.5 -> 11 taps)."""
  x = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2.0
  w = jnp.exp(-0.5 * jnp.square(x / sigma))
  return w / jnp.sum(w)


def blur_valid(x, window):
  """Separable Gaussian filter over H and W of (N, H, W, 1), valid region only."""
  k = window.shape[0]
  dn = ('NHWC', 'HWIO', 'NHWC')
  x = jax.lax.conv_general_dilated(x, window.reshape(k, 1, 1, 1), (1, 1), 'VALID',
                                   dimension_numbers=dn)
  return jax.lax.conv_general_dilated(x, window.reshape(1, k, 1, 1), (1, 1), 'VALID',
                                      dimension_numbers=dn)


def ssim(a, b, data_range: float = 1.0, weight=None):
  """Mean SSIM per image of NHWC batches, (B,): Wang et al.'s settings as upstream's skimage
  call (11x11 Gaussian window, σ = 1.5, K1 0.01, K2 0.03, population covariances), averaged
  over channels and the valid region (where the window fits; skimage crops the same border).
  With `weight` (B, H, W, 1), the weighted mean over the valid region (e.g. a person's pixels)."""
  if a.shape != b.shape or a.ndim != 4:
    raise ValueError(f'ssim expects two NHWC batches of one shape, got {a.shape}, {b.shape}.')
  if min(a.shape[1:3]) < SSIM_WINDOW:
    raise ValueError(f'ssim needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got '
                     f'{a.shape[1:3]}.')
  n, h, w, c = a.shape
  to_planes = lambda x: x.astype(jnp.float32).transpose(0, 3, 1, 2).reshape(n * c, h, w, 1)
  x, y = to_planes(a), to_planes(b)
  window = gaussian_window()
  mx, my = blur_valid(x, window), blur_valid(y, window)
  vx = blur_valid(x * x, window) - mx * mx
  vy = blur_valid(y * y, window) - my * my
  cxy = blur_valid(x * y, window) - mx * my
  c1, c2 = (SSIM_K1 * data_range)**2, (SSIM_K2 * data_range)**2
  s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
  if weight is None:
    return jnp.mean(s.reshape(n, -1), axis=-1)
  s = jnp.mean(s.reshape(n, c, *s.shape[1:3]), axis=1)  # (B, h', w'): the channels' mean
  r = (SSIM_WINDOW - 1) // 2  # the window's centre pixels
  w = weight[:, r:r + s.shape[1], r:r + s.shape[2], 0].astype(jnp.float32)
  return jnp.sum(s * w, axis=(1, 2)) / jnp.maximum(jnp.sum(w, axis=(1, 2)), 1e-6)


def pixel_weight(person_mask, cfg: 'LossConfig'):
  """1 on the room, cfg.person_weight on the person (B, H, W, 1); None when that is 1."""
  if person_mask is None or cfg.person_weight == 1.0:
    return None
  return 1.0 + (cfg.person_weight - 1.0) * person_mask


def likelihood(vgg_weights, pred, target, cfg: LossConfig, person_mask=None):
  """(L_ll, named terms): the perceptual loss, or pixel L1 + SSIM when vgg_weights is None.

  pred and target are NHWC images in [-1, 1]. With `person_mask` (B, H, W, 1) and
  cfg.person_weight != 1, every term is a weighted mean that counts the person's pixels
  person_weight times (most of a frame is room, which a model gets right first).
  """
  weight = pixel_weight(person_mask, cfg)
  if vgg_weights is not None:
    loss, terms = perceptual_loss(vgg_weights, pred, target, cfg.likelihood_weights, weight)
    return cfg.ll_weight * loss, {f'll_{n}': terms[i] for i, n in enumerate(vgg.TAP_NAMES)}
  l1 = weighted_mean(jnp.abs(pred - target), weight)
  s = jnp.mean(ssim((pred + 1.0) * 0.5, (target + 1.0) * 0.5, weight=weight))
  return cfg.ll_weight * (l1 + cfg.ssim_weight * (1.0 - s)), {'ll_l1': l1, 'll_ssim': s}


def gaussian_kl(mu, logstd):
  """KL(N(mu, σ²) || N(0, 1)) summed over all but the batch axis, averaged over the batch."""
  per_sample = jnp.sum((-logstd + 0.5 * (jnp.exp(2.0 * logstd) + jnp.square(mu))).reshape(
      mu.shape[0], -1), axis=-1)
  return jnp.mean(per_sample) - 0.5 * (mu.size // mu.shape[0])


def latent_kl(means, logstds):
  """Mean over the latent scales of their KL (upstream averages the two scales)."""
  return jnp.mean(jnp.stack([gaussian_kl(m, s) for m, s in zip(means, logstds)]))


def update_gamma(gamma, kl, step, cfg: LossConfig):
  """gamma after this step's KL: dual ascent once KL is in the loss, else unchanged."""
  stepped = dual_ascent(gamma, kl, cfg.info_budget, cfg.gamma_step)
  return jnp.where(step >= cfg.n_init_batches, stepped, gamma)


def keypoint_l2(pred, target):
  """Batch mean of the L2 norm of the whole (J, 2) error of each sample (not squared)."""
  err = (pred - target).reshape(pred.shape[0], -1)
  return jnp.mean(jnp.sqrt(jnp.sum(jnp.square(err), axis=-1)))


def chance_keypoint_l2(keypoints) -> float:
  """The adversary's chance level: keypoint_l2 of predicting the mean pose of `keypoints`
  (N, J, 2) for every one of them (float64, so it is the same on every machine)."""
  kp = np.asarray(keypoints, np.float64).reshape(len(keypoints), -1)
  return float(np.mean(np.sqrt(np.sum(np.square(kp - kp.mean(axis=0)), axis=-1))))


def adversarial_term(reg_loss, clamp: float):
  """min(L_reg, clamp): zero gradient once the regressor's loss is above the clamp."""
  return jnp.minimum(reg_loss, clamp)


def gan_terms(disc_params, pred, image, stickman, *, disc_def):
  """(adversarial, feature matching) terms of the appearance model: -mean D(pred | stickman),
  and the mean over D's layers of the mean |D_l(pred) - D_l(image)|; D is held fixed."""
  disc = nnx.merge(disc_def, jax.lax.stop_gradient(disc_params))
  fake_logits, fake_feats = disc(pred, stickman)
  _, real_feats = disc(image, stickman)
  matching = jnp.mean(jnp.stack([jnp.mean(jnp.abs(f - jax.lax.stop_gradient(r)))
                                 for f, r in zip(fake_feats, real_feats)]))
  return -jnp.mean(fake_logits), matching


def discriminator_loss(disc_params, image, fake, stickman, *, disc_def):
  """The discriminator's hinge loss: mean relu(1 - D(real)) + mean relu(1 + D(fake)); `fake`
  is data here (the appearance model's output, gradient stopped)."""
  disc = nnx.merge(disc_def, disc_params)
  real_logits = disc(image, stickman)[0]
  fake_logits = disc(jax.lax.stop_gradient(fake), stickman)[0]
  return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def regressor_loss(reg_params, means, keypoints, *, reg_def):
  """The regressor's own objective: keypoint_l2 of its prediction from the means, which are
  data here (stop_gradient), so the appearance model gets nothing from this loss."""
  reg = nnx.merge(reg_def, reg_params)
  return keypoint_l2(reg([jax.lax.stop_gradient(m) for m in means]), keypoints)


def encode(params, appearance, key, *, model_def):
  """The appearance posterior in training mode: (means, logstds, latents), lists as
  AppearanceModel.encode; the first half of `main_loss`."""
  return nnx.merge(model_def, params).encode(appearance, key=key)


def loss_from_codes(params, codes, reg_params, vgg_weights, gamma, step, batch, key, *,
                    model_def, reg_def, cfg: LossConfig = LossConfig(), disc_params=None,
                    disc_def=None):
  """The second half of `main_loss`: the objective given the encoder's `codes`, so that a
  train step can run the encoder once, feed its means to the regressor's update and
  differentiate through it (jax.vjp) without a second pass."""
  means, logstds, latents = codes
  pred = nnx.merge(model_def, params).decode(batch['stickman'], latents, key=key,
                                             appearance=batch['appearance'])
  ll, aux = likelihood(vgg_weights, pred, batch['image'], cfg, batch.get('person_mask'))
  kl = latent_kl(means, logstds)
  kl_weight = jnp.where(step >= cfg.n_init_batches, gamma, 0.0)
  loss = ll + kl_weight * kl
  reg = nnx.merge(reg_def, jax.lax.stop_gradient(reg_params))
  # The keypoints of the frame the code was made from: with appearance_source='other' that is
  # not the target, and regressing the target's would only reward hiding who the person is.
  reg_loss = keypoint_l2(reg(means), batch['appearance_keypoints'])
  loss = loss - cfg.adversary_weight * adversarial_term(reg_loss, cfg.adversary_clamp)
  if disc_params is not None:  # cfg.gan_weight or feature_matching_weight > 0
    gan, matching = gan_terms(disc_params, pred, batch['image'], batch['stickman'],
                              disc_def=disc_def)
    loss = loss + cfg.gan_weight * gan + cfg.feature_matching_weight * matching
    aux.update(gan=gan, feature_matching=matching)
  aux.update(likelihood=ll, kl=kl, kl_weight=kl_weight, regressor_loss=reg_loss,
             logstd=jnp.mean(jnp.stack([jnp.mean(s) for s in logstds])),
             means=[jax.lax.stop_gradient(m) for m in means],
             reconstruction=jax.lax.stop_gradient(pred))
  return loss, aux


def main_loss(params, reg_params, vgg_weights, gamma, step, batch, key, *, model_def, reg_def,
              cfg: LossConfig = LossConfig(), disc_params=None, disc_def=None):
  """The appearance model's objective; differentiate w.r.t. `params` (argument 0).

  Args:
    params: appearance-model state (nnx.split of AppearanceModel, or its pure dict).
    reg_params: regressor state; held fixed (stop_gradient), so its gradient here is zero.
    vgg_weights: bds_jax.models.vgg.load_vgg19(...) output, or None for pixel L1 + SSIM.
    gamma: the KL multiplier (float32 scalar); step: completed updates (int scalar).
    batch: 'image' (B, S, S, 3) target in [-1, 1], 'appearance' (the encoder input: the image
      itself or its part crops), 'stickman' (B, S, S, 3), 'appearance_keypoints' (B, J, 2) in
      [0, 1]: the keypoints of the frame 'appearance' shows (the adversary's targets).
    key: dropout and posterior noise (split into the encoder's and the decoder's keys).
  Returns:
    (loss, aux): aux holds the named likelihood terms, 'likelihood', 'kl', 'kl_weight',
    'regressor_loss', 'logstd' (mean), and, gradient-free, the 'means' (for the regressor's
    update) and the 'reconstruction'.
  """
  k_encode, k_decode = jax.random.split(key)
  codes = encode(params, batch['appearance'], k_encode, model_def=model_def)
  return loss_from_codes(params, codes, reg_params, vgg_weights, gamma, step, batch, k_decode,
                         model_def=model_def, reg_def=reg_def, cfg=cfg,
                         disc_params=disc_params, disc_def=disc_def)
