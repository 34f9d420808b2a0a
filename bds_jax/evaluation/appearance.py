"""The evaluate.py suite of appearance runs (paper Table 5; reference spec §5.7, issue 11 §3).

  python evaluate.py --config=configs/appearance.py[:preset] --workdir=RUN \
      [--eval_config.appearance.inception_weights=inception_v3.npz]
      [--eval_config.appearance.lpips_weights=lpips_vgg.npz]

On the first `num_images` frames of the run's eval split (upstream: up to 8 000 test images,
in order), the model renders with posterior means and no dropout:
- `reconstruction` (Table 5's setting): the frame's own appearance input and stickman;
- `transfer`: the appearance of another frame of the same person (seeded; upstream's
  `map_ids`), in the frame's stickman; the frame itself is its truth.
Each gets SSIM (on [0, 1], Wang et al.'s settings) and L1 (on [-1, 1]) against the frame, and,
when Inception-v3 weights are given (bds_jax/models/inception.py), the Inception Score of its
keypoint-box crops (upstream's inference protocol) and the FID between those crops and the
real frames' crops; `real` is the IS of the real crops, for scale. Without weights the IS and
FID entries are None and `inception` says "no Inception weights given".

`posture_probe`, the analogue of the behavior model's RE (how much posture leaks into the
appearance code): a fresh regressor of the adversary's architecture is trained on the
appearance means of `probe_images` *train*-split frames (Adam 1e-3, batch 64, up to
`probe_steps` steps, kept at the best of 20 checks on a fifth of those frames' people, held
out, so that a code with no posture reads as the mean-pose error rather than above it) and
scored on the eval frames' means: the batch mean of the L2 norm of the (J, 2)
error, keypoints in [0, 1] of the image size. Beside it: the run's own adversary on the same
means, and predicting the train frames' mean keypoints (no information). We train a fresh
probe rather than trust the adversary: the encoder is trained against that adversary, so it
may hide posture from it alone, and a stale adversary underestimates the leak. Training on
train-split means and scoring on held-out ones measures what generalises, as the behavior RE
does (upstream's extra regressor trained and was read on the test set). A probe error near
the mean-pose reference means the code holds little posture. `identity_error` is the same probe
given, for each frame, the code of *another* frame of the same person (train and eval alike):
what the person's look alone (build, proportions, the camera's distance, all of which an
appearance code should carry) says about a frame's keypoints. A probe under the mean-pose error
but at the identity error has found the person, not the frame's posture.

On synthetic_people, `truth` adds transfer to *another* person scored against the true
rendering, with naive references (`bds_jax.evaluation.appearance_truth`), and LPIPS beside
SSIM and L1 when LPIPS weights are given (bds_jax/models/lpips.py).
"""

import dataclasses
import functools
import logging

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from bds_jax import sharding
from bds_jax.data import datasets
from bds_jax.data import images as images_lib
from bds_jax.evaluation import appearance_truth as truth_lib
from bds_jax.evaluation import report
from bds_jax.evaluation.report import fmt
from bds_jax.evaluation.context import Context
from bds_jax.metrics import fid
from bds_jax.metrics import image_scores
from bds_jax.models import appearance as appearance_lib
from bds_jax.models import appearance_losses as al
from bds_jax.models import inception
from bds_jax.models import lpips

log = logging.getLogger(__name__)

NO_INCEPTION = 'no Inception weights given'
PROBE_BATCH, PROBE_LR = 64, 1e-3
# The probe stops where it does best on a fifth of the training people, checked 20 times.
PROBE_HOLDOUT, PROBE_CHECKS = 0.2, 20


@functools.lru_cache(maxsize=2)
def _inception_params(path: str):
  return inception.load_inception_v3(path)


@functools.lru_cache(maxsize=2)  # also read by runner.evaluate up front, to fail fast
def lpips_params(path: str):
  return lpips.load_lpips(path)


def _items(images: images_lib.ImageSet, index, partner) -> dict:
  """Model inputs of frames `index`; 'appearance' is each frame's own encoder input and
  'paired_appearance' its partner's (images must have appearance_source='self')."""
  items = [images.item(int(i), int(j)) for i, j in zip(index, partner)]
  keys = ('image', 'stickman', 'keypoints', 'appearance', 'paired_appearance')
  return {k: np.stack([it[k] for it in items]) for k in keys}


def _per_image_l2(pred, target):
  return jnp.sqrt(jnp.sum(jnp.square((pred - target).reshape(pred.shape[0], -1)), axis=-1))


@functools.lru_cache(maxsize=4)  # one compiled program per model structure
def _scorer(model_def, reg_def, image_size: int, with_inception: bool):
  @jax.jit
  def score(params, reg_params, inc_params, appearance, paired_appearance, stickman, image,
            keypoints):
    model = nnx.merge(model_def, params)
    recon, means, _ = model(appearance, stickman)          # no key: means, no dropout
    transfer, partner_means, _ = model(paired_appearance, stickman)
    recon, transfer = recon.astype(jnp.float32), transfer.astype(jnp.float32)
    out = {'reconstruction': truth_lib.scores(recon, image),
           'transfer': truth_lib.scores(transfer, image),
           'means': [m.astype(jnp.float32) for m in means],
           'partner_means': [m.astype(jnp.float32) for m in partner_means],
           'adversary_error': _per_image_l2(nnx.merge(reg_def, reg_params)(means), keypoints)}
    if with_inception:  # one Inception pass over the three sets (one copy in the program)
      names = ('reconstruction', 'transfer', 'real')
      crops = image_scores.keypoint_box_crops(
          jnp.concatenate([recon, transfer, image]), jnp.tile(keypoints * image_size, (3, 1, 1)),
          inception.INPUT_SIZE)
      logits, pool = inception.inception_v3(inc_params, crops)
      n = image.shape[0]
      for i, name in enumerate(names):
        out[f'{name}_inception'] = (logits[i * n:(i + 1) * n], pool[i * n:(i + 1) * n])
    return out
  return score


@functools.lru_cache(maxsize=4)
def _encoder(model_def):
  return jax.jit(lambda params, x: [m.astype(jnp.float32) for m in
                                    nnx.merge(model_def, params).encode(x)[0]])


def fresh_regressor(reg_params: dict, latent_shapes, seed: int):
  """(graph, pure-dict params) of a newly initialised regressor shaped like the run's."""
  conv_channels = reg_params['convs'][0]['kernel'].shape[-1]
  hidden, outputs = reg_params['head']['kernel'].shape
  reg = appearance_lib.KeypointRegressor(latent_shapes, outputs // 2,
                                         nnx.Rngs(params=jax.random.key(seed)),
                                         conv_channels=conv_channels, hidden=hidden)
  graph, state = nnx.split(reg)
  return graph, nnx.to_pure_dict(state)


def fit_probe(reg_params: dict, train_means, train_kp, test_means, test_kp, *, steps: int,
              seed: int, groups=None) -> tuple[float, int]:
  """(test error, steps kept): a fresh regressor trained by Adam on minibatches of
  (train_means, train_kp), stopped where it does best on held-out training people.

  A fraction PROBE_HOLDOUT of the `groups` (the frames' people; None: each frame its own) is
  held out, and the probe starts from their complement's mean pose. Every steps / PROBE_CHECKS
  steps it is scored on the held-out people, and the test error (keypoint L2, as the
  adversary's loss) is that of the best check, step 0 (the mean pose) included. Trained to
  the end, a probe of a code with no posture fitted noise and read *above* the mean-pose error.
  """
  graph, params = fresh_regressor(reg_params, tuple(m.shape[1:] for m in train_means), seed)
  rng = np.random.default_rng(seed)
  if groups is None or len(np.unique(groups)) < 2:  # one person: hold out frames instead
    groups = np.arange(len(train_kp))
  ids = rng.permutation(np.unique(groups))
  held = np.isin(groups, ids[:max(1, int(round(len(ids) * PROBE_HOLDOUT)))])
  fit_idx, held_idx = np.flatnonzero(~held), np.flatnonzero(held)
  # It starts at chance: a zero head whose bias is the fitted frames' mean pose, so "no
  # posture" is a check it can keep (step 0) rather than a level it must learn its way to.
  params['head']['kernel'] = np.zeros_like(params['head']['kernel'])
  params['head']['bias'] = np.mean(train_kp[fit_idx], axis=0).reshape(-1).astype(np.float32)
  checks = max(1, min(PROBE_CHECKS, int(steps)))
  chunk = max(1, int(steps) // checks)
  schedule = fit_idx[rng.integers(len(fit_idx), size=(checks, chunk, min(PROBE_BATCH,
                                                                          len(fit_idx))))]
  tx = optax.adam(PROBE_LR)
  loss_fn = functools.partial(al.regressor_loss, reg_def=graph)

  @jax.jit
  def train(params, opt, means, kp, schedule):
    def one(carry, idx):
      params, opt = carry
      grads = jax.grad(loss_fn)(params, [m[idx] for m in means], kp[idx])
      updates, opt = tx.update(grads, opt, params)
      return (optax.apply_updates(params, updates), opt), None
    return jax.lax.scan(one, (params, opt), schedule)[0]

  error = jax.jit(lambda p, m, kp: jnp.mean(_per_image_l2(nnx.merge(graph, p)(m), kp)))
  means, kp = jax.device_put((list(train_means), train_kp))
  held_means, held_kp = jax.device_put(([m[held_idx] for m in train_means], train_kp[held_idx]))
  opt = tx.init(params)
  best = (float(error(params, held_means, held_kp)), params, 0)
  for i in range(checks):
    params, opt = train(params, opt, means, kp, schedule[i])
    held_error = float(error(params, held_means, held_kp))
    if held_error < best[0]:
      best = (held_error, params, (i + 1) * chunk)
  test_error = error(best[1], jax.device_put(list(test_means)), jax.device_put(test_kp))
  return float(test_error), best[2]


def _own_inputs(images: images_lib.ImageSet, index) -> np.ndarray:
  """The encoder input of each frame itself (item(i, i)'s paired_appearance is frame i's)."""
  return np.stack([images.item(int(i), int(i))['paired_appearance'] for i in index])


def _posture_probe(ctx: Context, test_means, test_partner_means, adversary_error, index, *,
                   probe_images: int, probe_steps: int, seed: int, batch_size: int) -> dict:
  size = ctx.test.image_size
  test_kp = ctx.test.keypoints[index] / size
  train = ctx.train
  rng = np.random.default_rng(seed + 3)
  pick = np.sort(rng.permutation(len(train))[:probe_images])
  pick_partner = np.array([train.random_partner(int(i), rng) for i in pick], np.int64)
  encode = _encoder(ctx.appearance.model_def)
  params = jax.device_put(ctx.appearance.params)

  def means_of(frames):  # the train frames' own codes
    parts = [sharding.batched(lambda x: encode(params, x),
                              (_own_inputs(train, frames[i:i + 256]),), batch_size,
                              ctx.data_sharding) for i in range(0, len(frames), 256)]
    return jax.tree.map(lambda *xs: np.concatenate(xs), *parts)

  train_kp = train.keypoints[pick] / size
  mean_pose = np.broadcast_to(np.mean(train_kp, axis=0), test_kp.shape)
  fit = functools.partial(fit_probe, ctx.appearance.reg_params, steps=probe_steps,
                          seed=seed + 4, groups=train.persons[pick])
  probe_error, probe_kept = fit(means_of(pick), train_kp, test_means, test_kp)
  # The same probe reading each frame's keypoints off the code of *another* frame of the
  # person: all a code of the person's look (build, proportions, how far the camera is) can
  # say about the keypoints of a frame it has not seen, with no posture of that frame.
  identity_error, identity_kept = fit(means_of(pick_partner), train_kp, test_partner_means,
                                      test_kp)
  return {
      'probe_error': probe_error, 'identity_error': identity_error,
      'probe_steps_kept': probe_kept, 'identity_steps_kept': identity_kept,
      'adversary_error': float(np.mean(adversary_error)),
      'mean_pose_error': float(np.mean(_per_image_l2(mean_pose, test_kp))),
      'train_images': int(len(pick)), 'test_images': int(len(index)),
      'steps': int(probe_steps)}


def run(ctx: Context, *, seed: int = 0, num_images: int = 8000,
        probe_images: int = 8000, probe_steps: int = 2000, num_pairs: int = 500,
        batch_size: int | None = None, inception_weights: str = '', lpips_weights: str = ''):
  """Yields the suite's results (see the module docstring); nested dicts of floats."""
  batch_size = int(batch_size or ctx.batch_size)
  # Reconstruction encodes the frame itself, whatever the run trained with (upstream's
  # ReconstructionSampler): an ImageSet whose 'appearance' is the frame's own input.
  test = dataclasses.replace(ctx.test, appearance_source='self')
  size = test.image_size
  rng = np.random.default_rng(seed + 5)
  index = np.arange(min(int(num_images), len(test)))
  partner = np.array([test.random_partner(int(i), rng) for i in index], np.int64)
  inc_params = _inception_params(inception_weights) if inception_weights else None
  lpips_net = lpips_params(lpips_weights) if lpips_weights else None  # checked even if unused
  model = ctx.appearance
  score = _scorer(model.model_def, model.reg_def, size, inc_params is not None)
  params, reg_params = jax.device_put((model.params, model.reg_params))
  inc_device = jax.device_put(inc_params) if inc_params is not None else None
  keys = ('appearance', 'paired_appearance', 'stickman', 'image', 'keypoints')
  parts = []
  for i in range(0, len(index), 8 * batch_size):  # a chunk at a time: bounded host memory
    arrays = _items(test, index[i:i + 8 * batch_size], partner[i:i + 8 * batch_size])
    parts.append(sharding.batched(lambda *xs: score(params, reg_params, inc_device, *xs),
                                  tuple(arrays[k] for k in keys), batch_size, ctx.data_sharding))
  out = jax.tree.map(lambda *xs: np.concatenate(xs), *parts)

  yield 'num_images', int(len(index))
  yield 'inception', inception_weights or NO_INCEPTION
  for name in ('reconstruction', 'transfer'):
    row = {k: float(np.mean(v)) for k, v in out[name].items()}
    if inc_params is not None:
      row['is'] = image_scores.inception_score(out[f'{name}_inception'][0])
      row['fid'] = (fid.fid_from_features(out['real_inception'][1],
                                          out[f'{name}_inception'][1])
                    if len(index) >= 2 else None)
    else:
      row['is'] = row['fid'] = None
    yield name, row
  yield 'real', {'is': image_scores.inception_score(out['real_inception'][0])
                       if inc_params is not None else None}
  yield 'posture_probe', _posture_probe(
      ctx, out['means'], out['partner_means'], out['adversary_error'], index,
      probe_images=int(probe_images), probe_steps=int(probe_steps), seed=seed,
      batch_size=batch_size)
  if datasets.get(ctx.config.data.name).true_renderings:  # a generator draws the truth
    yield 'truth', truth_lib.evaluate(model.model_def, model.params, test,
                                      truth_lib.dataset_supersample(ctx.config.data),
                                      num_pairs=num_pairs, seed=seed, batch_size=batch_size,
                                      data_sharding=ctx.data_sharding, lpips_params=lpips_net)


def _inception_cell(value, note: str, digits: int = 2) -> str:
  return fmt(value, digits) if value is not None else note


def table(results: dict, dataset: str) -> str:
  """Paper Table 5 (our rows, then the paper's), the posture probe, and on synthetic_people
  transfer against the true rendering."""
  spec = datasets.get(dataset)
  note = (f'\n*The paper\'s numbers are on {spec.title} (its column is marked); ours are on '
          f'`{dataset}`.*\n' if spec.paper_table5 else
          f'\n*Our numbers are on `{dataset}`; the paper reports Table 5 on DeepFashion and '
          'Market-1501 only (no Human3.6M numbers) and is shown for orientation only.*\n')
  lines = [f'## Appearance model (paper Table 5){note}',
           'Reconstruction: the frame\'s own appearance and stickman (the paper\'s setting). '
           'Transfer: the appearance of another frame of the same person in the frame\'s pose, '
           'scored against the frame. SSIM on [0, 1] (Wang et al.: Gaussian σ 1.5), L1 on '
           '[-1, 1]; IS (torchvision Inception-v3, upstream\'s protocol: keypoint-box crops, '
           '[-1, 1], 299 bilinear, 1 split) and FID against the real crops, not comparable '
           'with TF-Inception numbers.', '',
           '| model | setting | SSIM | IS | FID | L1 |', '|---|---|---|---|---|---|']
  for name, r in results.items():
    ni = r['inception'] if r['inception'] == NO_INCEPTION else '–'
    for setting in ('reconstruction', 'transfer'):
      m = r[setting]
      lines.append(f'| {name} | {setting} | {fmt(m["ssim"], 3)} | '
                   f'{_inception_cell(m["is"], ni)} | {_inception_cell(m["fid"], ni)} | '
                   f'{fmt(m["l1"], 3)} |')
    lines.append(f'| {name} | real eval frames (reference) | – | '
                 f'{_inception_cell(r["real"]["is"], ni)} | – | – |')
  for method, (df, market) in report.PAPER_TABLE5.items():
    for ds, (is_, ssim) in zip(report.TABLE5_DATASETS, (df, market)):
      mark = ' ◀' if ds == dataset else ''
      lines.append(f'| paper: {method} ({datasets.get(ds).title}){mark} | reconstruction | '
                   f'{ssim:.2f} | {is_:.2f} | | |')
  for method, per_dataset in report.PUBLISHED_POSE_GUIDED.items():
    for ds, (fid_, _, ssim) in zip(report.TABLE5_DATASETS, per_dataset):
      mark = ' ◀' if ds == dataset else ''
      lines.append(f'| published: {method} ({datasets.get(ds).title}){mark} | pose transfer '
                   f'at {datasets.get(ds).pose_guided_size} (their protocol) | {ssim:.3f} | | '
                   f'{fid_:.2f} | |')
  lines += ['', 'Published pose-guided rows (second-hand, from benchmark summaries) use their own '
            'protocol (pose transfer, not reconstruction; other resolutions; FID is fragile to '
            'the image set, resizing and file format): compare them only with numbers made that '
            'way. Their LPIPS: ' + '; '.join(
                f'{m} {fmt(df[1], 4)} ({datasets.get(report.TABLE5_DATASETS[0]).title}), '
                f'{fmt(mk[1], 4)} ({datasets.get(report.TABLE5_DATASETS[1]).title})'
                for m, (df, mk) in report.PUBLISHED_POSE_GUIDED.items())
            + '.']
  lines += ['', '### Posture in the appearance code (the RE analogue)',
            'Keypoint error (mean L2 norm of the (J, 2) error, keypoints in [0, 1] of the image '
            'size) of a fresh regressor trained on train-split appearance means and scored on '
            'the eval frames\' means; beside it the run\'s own adversary on the same means, and '
            'predicting the mean train pose (no information). The probe starts at that mean '
            'pose and keeps the step that does best on a fifth of the training people, held '
            'out, so a probe at the mean-pose error found nothing; below it, posture or '
            'identity. "Identity only": the same probe given the '
            'code of another frame of the same person, so all it can use is who the person is '
            '(build, proportions, camera distance); a probe at that level has found the person, '
            'not the frame\'s posture.', '',
            '| model | fresh probe (held out) | identity only | run\'s adversary | mean pose | '
            'train / eval frames | probe steps kept (identity) / of |',
            '|---|---|---|---|---|---|---|']
  for name, r in results.items():
    p = r['posture_probe']
    lines.append(f'| {name} | {fmt(p["probe_error"], 3)} | {fmt(p.get("identity_error"), 3)} | '
                 f'{fmt(p["adversary_error"], 3)} | '
                 f'{fmt(p["mean_pose_error"], 3)} | {p["train_images"]} / {p["test_images"]} | '
                 f'{p.get("probe_steps_kept", "–")} ({p.get("identity_steps_kept", "–")}) / '
                 f'{p["steps"]} |')
  for name, r in results.items():
    if 'truth' in r:
      lines += ['', truth_lib.truth_table(name, r['truth'])]
  lines += ['', '; '.join(f'{name}: {r["num_images"]} eval frames, Inception: {r["inception"]}'
                          for name, r in results.items())]
  return '\n'.join(lines) + '\n'
