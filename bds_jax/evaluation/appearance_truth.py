"""Appearance transfer scored against the true image (synthetic_people; issue 11 §3, new).

On real data a transfer (person A's appearance in person B's pose) has no ground truth, so
Table 5 and the trainer's `eval/transfer_*` can only use another frame of the *same* person.
On `synthetic_people` the generator draws it: every example stores its 3D pose, camera and
outfit, and `synthetic.truth.true_rendering` (`synthetic.people.render_person(A, B's
keypoints_3d, B's camera, outfit_seed=A's outfit)`) is A in B's pose, exactly as the dataset
would have rendered it.

Protocol, on the run's eval split: `num_pairs` seeded pairs (a, b) of frames of different
people. The model (no key: latents = posterior means, no dropout) renders
- the transfer: appearance input of frame a, stickman of frame b, scored against the truth
  render_person(subject of a, pose of b, camera of b, outfit of a); with model.room_scene the
  scene is another frame of b's person (its camera and room, that frame's person cut out);
- the reconstruction: frame b's own appearance input and stickman, scored against frame b.
Naive references, scored against the same truth:
- `appearance_image`: frame a itself (right person, wrong pose);
- `stickman`: frame b's stickman;
- `target_frame`: frame b itself (right pose, wrong person);
- `warped_parts` (models with part_warp): frame a's part crops warped into b's pose and
  pasted onto frame b, the mean where parts overlap; no learning. Crop pixels that are
  exactly black count as uncovered: they are the room of person-only crops (data.mask_room);
- `truth_blurred`: the truth itself blurred by a Gaussian of sigma 1 px. It calibrates the
  L1: a synthesis that has the right person in the right pose but cannot place 2-pixel
  stripes and checks exactly pays about this much.
Reported: mean SSIM (on [0, 1] images) and mean L1 (on [-1, 1], the model's range), and the
number of pairs, and `l1_person`: L1 on the pixels either person covers in the truth or in
frame b (coverage-weighted; most of a frame is room, which every row gets nearly right). And
`code_effect`, whether the model reads its appearance code at all: on those pixels, the mean
L1 between the transfer and the reconstruction (the same stickman, a's vs b's appearance
input) beside the mean L1 between their truths (truth vs frame b); and the model's L1 on the
other pixels (`model_background`), which should not move (the truths do not). A model that
paints one average person from the stickman alone has a code effect near 0. When LPIPS
weights are given (`bds_jax.models.lpips`, VGG16 v0.1; lower is better), mean LPIPS too.
Everything is seeded, so results are deterministic.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from bds_jax import sharding
from bds_jax.data import images as images_lib
from bds_jax.data import sources
from bds_jax.evaluation.report import fmt
from bds_jax.models import appearance_losses as al
from bds_jax.models import lpips as lpips_lib
from bds_jax.models import part_warp
from bds_jax.procedural import truth as synthetic_truth

# (name, what is scored against what): the model rows and the naive references.
ROWS = ('reconstruction', 'transfer', 'appearance_image', 'stickman', 'target_frame',
        'warped_parts', 'truth_blurred')
BLUR_SIGMA = 1.0  # px, truth_blurred's
KEYS = ('appearance_a', 'appearance_b', 'stickman_b', 'image_a', 'image_b', 'truth', 'person')


def dataset_supersample(data_config) -> int:
  """The supersampling the run's synthetic_people build used (the truth must match it)."""
  builder = sources.get_builder(data_config.name, data_config.data_dir or None,
                                data_config.builder_config or None)
  return int(builder.builder_config.supersample)


def transfer_pairs(images: images_lib.ImageSet, n: int, seed: int):
  """n seeded (appearance frame a, target frame b) index pairs of different people."""
  if len(images.people) < 2:
    raise ValueError(f'{images.name}/{images.split} has one person; transfer needs two.')
  rng = np.random.default_rng(seed)
  a = rng.integers(len(images), size=n)
  b = np.array([rng.choice(np.flatnonzero(images.persons != images.persons[i])) for i in a],
               np.int64)
  return a, b


def _inputs(images: images_lib.ImageSet, a, b, supersample: int) -> dict:
  items_a = [images.item(int(i), int(i)) for i in a]  # only their own fields are used
  # With room_scene the scene of another frame of b's person (its camera), as in training.
  items_b = [images.item(int(j), int(j), images.random_partner(int(j), np.random.default_rng(
      int(j))) if images.room_scene else None) for j in b]
  stack = lambda items, k: np.stack([it[k] for it in items])
  render = synthetic_truth.true_rendering
  truths = [render(images, int(i), int(j), supersample, True) for i, j in zip(a, b)]
  own = [render(images, int(j), int(j), supersample, True)[1] for j in b]
  # Where either person covers the frame: the pixels where A's and B's truths can differ.
  person = np.stack([np.maximum(m, o) for (_, m), o in zip(truths, own)])[..., None]
  # The encoder's input of frame a: its own image or its part crops (item's 'paired_*' is
  # always the partner's own input, whatever data.appearance_source says).
  return {
      'appearance_a': stack(items_a, 'paired_appearance'),
      'appearance_b': stack(items_b, 'paired_appearance'),
      'stickman_b': stack(items_b, 'stickman'),
      'image_a': stack(items_a, 'image'),
      'image_b': stack(items_b, 'image'),
      'truth': np.stack([images_lib.to_unit_range(t) for t, _ in truths]),
      'person': person.astype(np.float32),
  }


def region_l1(x, y, weight):
  """Per-image mean |x - y| over the pixels weighted by `weight` (B, H, W, 1)."""
  total = jnp.sum(jnp.abs(x - y) * weight, axis=(1, 2, 3))
  return total / jnp.maximum(x.shape[-1] * jnp.sum(weight, axis=(1, 2, 3)), 1e-6)


def gradient_energy(x, weight):
  """Per-image sum of squared horizontal and vertical differences, weighted by `weight`
  (B, H, W, 1) at the pixel each difference ends on."""
  dx, dy = x[:, :, 1:] - x[:, :, :-1], x[:, 1:] - x[:, :-1]
  return (jnp.sum(jnp.square(dx) * weight[:, :, 1:], axis=(1, 2, 3))
          + jnp.sum(jnp.square(dy) * weight[:, 1:], axis=(1, 2, 3)))


def scores(pred, target, person=None) -> dict:
  """Per-image SSIM (on [0, 1]) and L1 (on [-1, 1]) of [-1, 1] NHWC batches, and with
  `person` weights (B, H, W, 1) the L1 and SSIM on the person's pixels and the sharpness
  there: pred's image-gradient energy over target's (1: as sharp; a blur is below 1, so a
  mean colour cannot pass for a good L1)."""
  unit = lambda x: (x + 1.0) * 0.5
  out = {'ssim': al.ssim(unit(pred), unit(target)),
         'l1': jnp.mean(jnp.abs(pred - target), axis=(1, 2, 3))}
  if person is not None:
    out['l1_person'] = region_l1(pred, target, person)
    out['ssim_person'] = al.ssim(unit(pred), unit(target), weight=person)
    out['sharpness'] = gradient_energy(pred, person) / jnp.maximum(
        gradient_energy(target, person), 1e-6)
  return out


def gaussian_blur(x, sigma: float):
  """NHWC `x` blurred per channel by a separable Gaussian of `sigma` px, truncated at 3 sigma
  (edges repeated): appearance_losses' SSIM window and filter, at full size."""
  radius = max(1, int(np.ceil(3 * sigma)))
  n, h, w, c = x.shape
  x = jnp.pad(x, ((0, 0), (radius, radius), (radius, radius), (0, 0)), mode='edge')
  planes = x.transpose(0, 3, 1, 2).reshape(n * c, h + 2 * radius, w + 2 * radius, 1)
  out = al.blur_valid(planes, al.gaussian_window(2 * radius + 1, sigma).astype(x.dtype))
  return out.reshape(n, c, h, w).transpose(0, 2, 3, 1)


def pasted_parts(crops, coordinates, background):
  """`crops` (B, c, c, 3·P) warped into the pose of `coordinates` (B, S, S, 3·P,
  part_map's), the mean of the covering parts per pixel, over `background` elsewhere."""
  warped = part_warp.warp_parts(crops, coordinates)
  p = warped.shape[-1] // 4
  rgb = warped[..., :3 * p].reshape(*warped.shape[:3], p, 3)
  # exactly black crop pixels are the room of person-only crops (data.mask_room)
  covered = warped[..., 3 * p:] * (jnp.max(rgb, axis=-1) > -1.0 + 1e-3)
  count = jnp.sum(covered, axis=-1, keepdims=True)
  mean = jnp.sum(rgb * covered[..., None], axis=-2) / jnp.maximum(count, 1e-6)
  return jnp.where(count > 0, mean, background)


@functools.lru_cache(maxsize=4)  # one compiled program per model structure
def _scorer(model_def, with_lpips: bool):
  @jax.jit
  def score(params, lpips_params, appearance_a, appearance_b, stickman_b, image_a, image_b,
            truth, person):
    model = nnx.merge(model_def, params)
    recon = model(appearance_b, stickman_b)[0]      # no key: latents = means, no dropout
    transfer = model(appearance_a, stickman_b)[0]
    images = {'recon': recon.astype(jnp.float32), 'transfer': transfer.astype(jnp.float32),
              'image_a': image_a, 'stickman_b': stickman_b[..., :3],  # the drawing (part_warp:
              'image_b': image_b, 'truth': truth}                     # coordinates follow it)
    rows = {'reconstruction': ('recon', 'image_b'), 'transfer': ('transfer', 'truth'),
            'appearance_image': ('image_a', 'truth'), 'stickman': ('stickman_b', 'truth'),
            'target_frame': ('image_b', 'truth')}
    if model.part_warp:
      coordinates = stickman_b[..., model.pose_channels:
                               model.pose_channels + model.coordinate_channels]
      images['warped'] = pasted_parts(appearance_a, coordinates, image_b)
      rows['warped_parts'] = ('warped', 'truth')
    images['blurred'] = gaussian_blur(truth, BLUR_SIGMA)
    rows['truth_blurred'] = ('blurred', 'truth')
    out = {name: scores(images[p], images[t], person) for name, (p, t) in rows.items()}
    out['code_effect'] = {  # only the person's pixels should move; the truths differ only there
        'model': region_l1(images['transfer'], images['recon'], person),
        'truth': out['target_frame']['l1_person'],  # truth vs frame b, on the person
        'model_background': region_l1(images['transfer'], images['recon'], 1.0 - person)}
    if with_lpips:  # one VGG16 pass over the distinct image sets (one copy in the program)
      n = truth.shape[0]
      feats = lpips_lib.features(lpips_params, jnp.concatenate(list(images.values())))
      part = {k: [f[i * n:(i + 1) * n] for f in feats] for i, k in enumerate(images)}
      for name, (p, t) in rows.items():
        out[name]['lpips'] = lpips_lib.distance_from_features(lpips_params, part[p], part[t])
    return out
  return score


def evaluate(model_def, params, images: images_lib.ImageSet, supersample: int, *,
             num_pairs: int, seed: int, batch_size: int, data_sharding=None,
             lpips_params=None) -> dict:
  """{'num_pairs': n, row: {'ssim', 'l1', 'l1_person': means} for each of ROWS,
  'code_effect': {'model', 'truth', 'model_background': mean L1}}; rows also have 'lpips'
  when `lpips_params` (bds_jax.models.lpips.load_lpips) are given."""
  a, b = transfer_pairs(images, int(num_pairs), seed + 11)
  score = _scorer(model_def, lpips_params is not None)
  lpips_params = jax.device_put(lpips_params)
  params = jax.device_put(params)  # on device once, not per batch (transfer guard)
  chunk = 8 * batch_size           # rendered and scored a chunk at a time (bounded memory)
  parts = []
  for i in range(0, len(a), chunk):
    arrays = _inputs(images, a[i:i + chunk], b[i:i + chunk], supersample)
    parts.append(sharding.batched(lambda *xs: score(params, lpips_params, *xs),
                                  tuple(arrays[k] for k in KEYS), batch_size, data_sharding))
  per_image = jax.tree.map(lambda *xs: np.concatenate(xs), *parts)
  out = {'num_pairs': int(len(a))}
  for name in [r for r in ROWS if r in per_image] + ['code_effect']:
    out[name] = {k: float(np.mean(v)) for k, v in per_image[name].items()}
  return out


def truth_table(name: str, t: dict) -> str:
  labels = {'reconstruction': 'model: reconstruction of B', 'transfer': 'model: transfer A → B',
            'appearance_image': 'reference: A\'s image', 'stickman': 'reference: B\'s stickman',
            'target_frame': 'reference: B\'s frame (wrong person)',
            'warped_parts': 'reference: A\'s part crops warped onto B\'s frame',
            'truth_blurred': f'reference: the truth blurred (sigma {BLUR_SIGMA:g} px)'}
  # Results written before a column existed lack it; LPIPS only when its weights were given.
  optional = [('l1_person', 'L1, person'), ('ssim_person', 'SSIM, person'),
              ('sharpness', 'sharpness, person'), ('lpips', 'LPIPS')]
  present = [(k, c) for k, c in optional if k in t['transfer']]
  with_person = 'l1_person' in t['transfer']
  with_lpips = 'lpips' in t['transfer']
  columns = ['SSIM', 'L1'] + [c for _, c in present]
  keys = ['ssim', 'l1'] + [k for k, _ in present]
  lines = [f'### {name}: transfer against the true rendering (synthetic_people; new)',
           f'{t["num_pairs"]} eval pairs of different people. Truth: person A rendered in frame '
           'B\'s 3D pose and camera. SSIM on [0, 1] (higher is better), L1 on [-1, 1] (lower '
           'is better). Reconstruction is scored against frame B itself; every other row '
           'against the truth.', '', '| row | ' + ' | '.join(columns) + ' |',
           '|---' * (len(columns) + 1) + '|']
  if with_person:
    lines[1] += (' "L1, person": on the pixels A or B covers (the rest is room, which every '
                 'row gets nearly right).')
  if 'sharpness' in t['transfer']:
    lines[1] += (' "sharpness, person": the image-gradient energy there over the truth\'s '
                 '(1: as sharp as the truth; a blur is below 1).')
  if with_lpips:
    lines[1] += ' LPIPS: VGG16, v0.1 (lower is better).'
  for row, label in labels.items():
    if row not in t:  # a row added later, or warped_parts without part_warp
      continue
    lines.append(f'| {label} | ' + ' | '.join(fmt(t[row][k], 3) for k in keys) + ' |')
  if 'code_effect' in t:
    e = t['code_effect']
    lines += ['', f'Code effect: swapping B\'s appearance input for A\'s moves the model\'s '
              f'output by L1 {fmt(e["model"], 3)} on the person and '
              f'{fmt(e["model_background"], 3)} elsewhere; A\'s and B\'s true images in that pose differ by '
              f'{fmt(e["truth"], 3)} on the person and not elsewhere (near 0 on the person: '
              'the model would ignore its appearance input; near the truths\' difference: it '
              'draws each person as their own).']
  return '\n'.join(lines)
