"""Appearance-model suite (issue 11 §3, synthetic part): transfer scored against the true image.

On real data a transfer (person A's appearance in person B's pose) has no ground truth, so the
trainer's `eval/transfer_*` can only use another frame of the *same* person. On
`synthetic_people` the generator draws it: every example stores its 3D pose and camera, and
`synthetic.people.render_person(A, B's keypoints_3d, B's camera)` is A in B's pose, exactly as
the dataset would have rendered it.

Protocol, on the run's eval split (`test`): `num_pairs` seeded pairs (a, b) of frames of
different subjects. The model (no key: latents = posterior means, no dropout) renders
- the transfer: appearance input of frame a, stickman of frame b, scored against the truth
  render_person(subject of a, pose of b, camera of b);
- the reconstruction: frame b's own appearance input and stickman, scored against frame b.
Naive references, scored against the same truth:
- `appearance_image`: frame a itself (right person, wrong pose);
- `stickman`: frame b's stickman;
- `target_frame`: frame b itself (right pose, wrong person).
Reported: mean SSIM (on [0, 1] images, as the trainer's eval) and mean L1 (on [-1, 1], the
model's range), and the number of pairs. Everything is seeded, so results are deterministic.

The evaluate.py runner loads behavior runs only (`runner.evaluate` reads a behavior config and a
behavior `Context`), so this suite has its own entry point: `evaluate_appearance(run_dir, ...)`
returns the results and `markdown_table(results)` formats them. `run(ctx, **kwargs)` follows
the evaluator protocol on an `AppearanceContext` (see `make_context`).
"""

import dataclasses
import functools
import sys

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from bds_jax import runs
from bds_jax.data import images as images_lib
from bds_jax.data import sources
from bds_jax.evaluation import common
from bds_jax.models import appearance_losses as al
from bds_jax.synthetic import camera as camera_lib
from bds_jax.synthetic import people

DATASET = 'synthetic_people'
# (name, what is scored against what): the model rows and the naive references.
ROWS = ('reconstruction', 'transfer', 'appearance_image', 'stickman', 'target_frame')


@dataclasses.dataclass(frozen=True)
class AppearanceContext:
  """What the suite sees: the model (graph + pure-dict params), the test split, batching."""
  model_def: object
  params: dict
  images: images_lib.ImageSet
  supersample: int        # rays per pixel axis the dataset was rendered with
  batch_size: int = 32
  data_sharding: object = None
  name: str = 'model'


def dataset_supersample(data_config) -> int:
  """The supersampling the run's synthetic_people build used (the truth must match it)."""
  builder = sources.get_builder(data_config.name, data_config.data_dir or None,
                                data_config.builder_config or None)
  return int(builder.builder_config.supersample)


def make_context(model_def, params, data_config, batch_size: int = 32,
                 split: str = 'test', name: str = 'model') -> AppearanceContext:
  if data_config.name != DATASET:
    raise ValueError(f'The appearance suite needs ground-truth renderings: data.name must be '
                     f'{DATASET!r}, got {data_config.name!r}.')
  return AppearanceContext(model_def, params, images_lib.load_split(data_config, split),
                           dataset_supersample(data_config), int(batch_size), name=name)


def transfer_pairs(images: images_lib.ImageSet, n: int, seed: int):
  """n seeded (appearance frame a, target frame b) index pairs of different subjects."""
  if len(images.people) < 2:
    raise ValueError(f'{images.name}/{images.split} has one subject; transfer needs two.')
  rng = np.random.default_rng(seed)
  a = rng.integers(len(images), size=n)
  b = np.array([rng.choice(np.flatnonzero(images.subjects != images.subjects[i])) for i in a],
               np.int64)
  return a, b


def true_rendering(images: images_lib.ImageSet, subject: int, target: int,
                   supersample: int) -> np.ndarray:
  """uint8 image of `subject` (an index into images.subject_names) in frame `target`'s stored
  3D pose, seen by its stored camera: what the dataset would hold for that person there."""
  ex = images.extras
  cam = camera_lib.Camera.from_arrays(ex['intrinsics'][target], ex['extrinsics'][target],
                                      images.image_size)
  return people.render_person(images.subject_names[subject], ex['keypoints_3d'][target], cam,
                              supersample=supersample)


def _inputs(images: images_lib.ImageSet, a, b, supersample: int) -> dict:
  items_a = [images.item(int(i), int(i)) for i in a]  # only their own fields are used
  items_b = [images.item(int(j), int(j)) for j in b]
  stack = lambda items, k: np.stack([it[k] for it in items])
  # The encoder's input of frame a: its own image or its part crops (item's 'paired_*' is
  # always the partner's own input, whatever data.appearance_source says).
  return {
      'appearance_a': stack(items_a, 'paired_appearance'),
      'appearance_b': stack(items_b, 'paired_appearance'),
      'stickman_b': stack(items_b, 'stickman'),
      'image_a': stack(items_a, 'image'),
      'image_b': stack(items_b, 'image'),
      'truth': np.stack([images_lib.to_unit_range(
          true_rendering(images, int(images.subjects[i]), int(j), supersample))
                         for i, j in zip(a, b)]),
  }


def scores(pred, target) -> dict:
  """Per-image SSIM (on [0, 1]) and L1 (on [-1, 1]) of [-1, 1] NHWC batches."""
  unit = lambda x: (x + 1.0) * 0.5
  return {'ssim': al.ssim(unit(pred), unit(target)),
          'l1': jnp.mean(jnp.abs(pred - target), axis=(1, 2, 3))}


@functools.lru_cache(maxsize=4)  # one compiled program per model structure
def _scorer(model_def):
  @jax.jit
  def score(params, appearance_a, appearance_b, stickman_b, image_a, image_b, truth):
    model = nnx.merge(model_def, params)
    recon = model(appearance_b, stickman_b)[0]      # no key: latents = means, no dropout
    transfer = model(appearance_a, stickman_b)[0]
    rows = {'reconstruction': (recon, image_b), 'transfer': (transfer, truth),
            'appearance_image': (image_a, truth), 'stickman': (stickman_b, truth),
            'target_frame': (image_b, truth)}
    return {name: scores(p.astype(jnp.float32), t) for name, (p, t) in rows.items()}
  return score


def run(ctx: AppearanceContext, *, seed: int = 0, num_pairs: int = 500,
        batch_size: int | None = None):
  """Yields `num_pairs` and, per row of ROWS, {'ssim': mean, 'l1': mean}."""
  a, b = transfer_pairs(ctx.images, int(num_pairs), seed + 11)
  arrays = _inputs(ctx.images, a, b, ctx.supersample)
  keys = ('appearance_a', 'appearance_b', 'stickman_b', 'image_a', 'image_b', 'truth')
  score = _scorer(ctx.model_def)
  params = jax.device_put(ctx.params)  # on device once, not per batch (transfer guard)
  per_image = common.batched(lambda *xs: score(params, *xs), tuple(arrays[k] for k in keys),
                             int(batch_size or ctx.batch_size), ctx.data_sharding)
  yield 'num_pairs', int(len(a))
  for name in ROWS:
    yield name, {k: float(np.mean(v)) for k, v in per_image[name].items()}


def evaluate_appearance(run_dir: str, num_pairs: int = 500, seed: int = 0,
                        batch_size: int = 32, data_dir: str | None = None,
                        step: int | None = None) -> dict:
  """The suite on a trained appearance run (its latest checkpoint unless `step`)."""
  run_ = runs.Run(run_dir, data_dir)
  loaded = run_.load_appearance(step)
  config = run_.config
  ctx = make_context(loaded.model_def, loaded.params, config.data, batch_size,
                     config.data.eval_split, name=run_.path)
  out = common.collect(sys.modules[__name__], ctx, seed=seed, num_pairs=num_pairs)
  return {'workdir': run_.path, 'step': int(loaded.step), 'seed': int(seed), **out}


def _provenance(results: dict) -> str:
  known = [f'{k} {results[k]}' for k in ('seed', 'step') if k in results]
  return f' ({", ".join(known)})' if known else ''


def markdown_table(results: dict) -> str:
  """The suite's results (one run's dict) as a Markdown table."""
  lines = ['## Appearance transfer against the true rendering (synthetic_people; new)',
           f'{results["num_pairs"]} test pairs of different people{_provenance(results)}. '
           'Truth: person A rendered in frame B\'s 3D pose and camera. SSIM on [0, 1] (higher '
           'is better), L1 on [-1, 1] (lower is better). Reconstruction is scored against frame '
           'B itself; every other row against the truth.', '',
           '| row | SSIM | L1 |', '|---|---|---|']
  labels = {'reconstruction': 'model: reconstruction of B', 'transfer': 'model: transfer A → B',
            'appearance_image': 'reference: A\'s image', 'stickman': 'reference: B\'s stickman',
            'target_frame': 'reference: B\'s frame (wrong person)'}
  for name in ROWS:
    r = results[name]
    lines.append(f'| {labels[name]} | {r["ssim"]:.3f} | {r["l1"]:.3f} |')
  return '\n'.join(lines) + '\n'
