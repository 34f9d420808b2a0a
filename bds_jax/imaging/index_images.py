"""DeepFashion and Market-1501 as upstream prepared them: an `index.p` beside the image files.

Reference spec §1.8. `index.p` is a pickled dict:
  imgs         image paths relative to the folder of index.p
  joints       per image an (18, 2) array in [0, 1] (x / width, y / height), negative where a
               joint is missing; the joint order is hard-coded per dataset (imaging/layouts.py)
  train        a bool mask: the image belongs to the train split (else test)
  joint_order  optional: joint names; checked against the hard-coded order, since upstream
               ignored it and a different order would silently scramble every stickman
The pickle is read with `bds_jax.safe_pickle` (plain data only; never code). Images are kept
when their four torso joints are present, as upstream's filter. The TFDS builders
(tfds_builders/deepfashion, tfds_builders/market1501) store, per kept image, the image at S×S
(the original bytes when they already are an S×S RGB JPEG or PNG, else resized bicubically as
upstream's PIL pipeline and stored as PNG), the keypoints × S in pixels (missing ones stay
negative) and a person id.

Person ids: upstream gave every image the dummy id 0. Here an id is read off the path where
the release names one (Market: the leading number of `0002_c1s1_000451_03.jpg`; DeepFashion
In-shop: `id_00000080` or `id00000080` in the path); any other image (Market's junk `-1` and
distractor `0000` images included) is its own person (a dummy id per image).
"""

import dataclasses
import io
import logging
import os
import re

import numpy as np
from PIL import Image

from bds_jax import safe_pickle
from bds_jax.imaging import layouts

logger = logging.getLogger(__name__)

INDEX_FILENAME = 'index.p'
# Normalised joints slightly outside [0, 1] occur (detections at the border); much larger
# values mean the index holds pixel coordinates.
_MAX_NORMALISED = 1.05


@dataclasses.dataclass(frozen=True)
class IndexDataset:
  """What differs between the index datasets."""
  name: str
  layout: layouts.KeypointLayout
  image_size: int            # S: images are stored S×S (Market's 128×64 are stretched)
  person_pattern: str        # regex on the relative path; group 1 is the person id
  dummy_ids: tuple[str, ...] = ()  # ids that name no person (Market junk / distractors)


DEEPFASHION = IndexDataset('deepfashion', layouts.DEEPFASHION, 256, r'id_?(\d{8})')
MARKET = IndexDataset('market1501', layouts.MARKET, 128, r'(?:^|/)(-?\d+)_c\d',
                      dummy_ids=('-1', '0000'))
DATASETS = {d.name: d for d in (DEEPFASHION, MARKET)}


@dataclasses.dataclass
class Index:
  """A validated index.p: N images."""
  imgs: list[str]
  joints: np.ndarray   # (N, J, 2) float32, normalised, negative = missing
  train: np.ndarray    # (N,) bool
  path: str


def _fail(path, text):
  raise ValueError(f'{path}: {text}')


def read_index(path, dataset: IndexDataset) -> Index:
  """Reads and validates `path` (an index.p) for `dataset`; errors name the file."""
  what = f"{dataset.name} index file ({INDEX_FILENAME})"
  obj = safe_pickle.load_path(path, what)
  if not isinstance(obj, dict):
    _fail(path, f'expected a pickled dict with keys imgs, joints, train; got {type(obj).__name__}.')
  missing = [k for k in ('imgs', 'joints', 'train') if k not in obj]
  if missing:
    _fail(path, f'missing key(s) {missing}; it has {sorted(map(str, obj))}. Expected upstream\'s '
          'prepared index (imgs, joints, train).')
  layout = dataset.layout
  if 'joint_order' in obj:
    check_joint_order(obj['joint_order'], layout, path)

  try:
    imgs = [p.decode('utf-8') if isinstance(p, bytes) else p for p in list(obj['imgs'])]
    joints = list(obj['joints'])
  except (TypeError, UnicodeDecodeError) as e:
    _fail(path, f"'imgs' and 'joints' must be lists (one entry per image): {e}")
  if not all(isinstance(p, str) and p for p in imgs):
    _fail(path, "'imgs' must be a list of relative image paths (strings).")
  n = len(imgs)
  if len(joints) != n:
    _fail(path, f"'joints' has {len(joints)} entries but 'imgs' has {n}.")
  for i, j in enumerate(joints):
    shape = np.shape(j)
    if shape != (layout.num_joints, 2):
      _fail(path, f"'joints' entry {i} ({imgs[i]}) has shape {shape}; expected "
            f'({layout.num_joints}, 2): {dataset.name} keypoints in the order '
            f'{list(layout.joint_names)}.')
  joints = np.asarray(joints, np.float64).reshape(n, layout.num_joints, 2)
  bad = ~np.isfinite(joints).all(axis=(1, 2))
  if bad.any():
    _fail(path, f"'joints' entry {int(np.argmax(bad))} ({imgs[int(np.argmax(bad))]}) holds NaN "
          'or inf; missing joints must be negative.')
  present = joints[(joints >= 0).all(axis=-1)]
  if present.size and present.max() > _MAX_NORMALISED:
    _fail(path, f"'joints' go up to {present.max():.1f}; expected coordinates normalised to "
          '[0, 1] (upstream\'s prepared index). An index in pixels must be divided by the image '
          'width and height first.')

  train = np.asarray(obj['train'])
  if train.shape != (n,) or not (train.dtype == bool or np.isin(train, (0, 1)).all()):
    _fail(path, f"'train' must be a bool mask of length {n} (one per image); got "
          f'{train.dtype} {train.shape}.')
  return Index(imgs, joints.astype(np.float32), train.astype(bool), str(path))


def check_joint_order(joint_order, layout: layouts.KeypointLayout, path):
  """Raises unless `joint_order` names `layout`'s joints in its order (any common spelling)."""
  try:
    names = [layouts.canonical_joint_name(n) for n in list(joint_order)]
  except TypeError:
    names = None
  if names != list(layout.joint_names):
    _fail(path, f"'joint_order' is {list(joint_order) if names is not None else joint_order!r}, "
          f'but this builder reads the joints in the order {list(layout.joint_names)} '
          '(hard-coded, as upstream). The index is for another dataset or joint model.')


def keep_mask(joints: np.ndarray, layout: layouts.KeypointLayout) -> np.ndarray:
  """Upstream's filter: all four torso joints present (both coordinates >= 0)."""
  torso = joints[:, list(layout.filter_joints)]
  return (torso >= 0).all(axis=(1, 2))


def person_id(rel_path: str, dataset: IndexDataset) -> str:
  """The person an image shows, from its path; the path itself when it names none."""
  m = re.search(dataset.person_pattern, rel_path.replace(os.sep, '/'))
  if m and m.group(1) not in dataset.dummy_ids:
    return f'{dataset.name}:{m.group(1)}'
  return f'image:{rel_path}'


def load_image(path, size: int) -> bytes:
  """The image at `path` as encoded S×S RGB bytes (see the module docstring).

  Raises:
    FileNotFoundError: no such file.
    ValueError: the file is not a decodable image (truncated, corrupt), naming it.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: image listed in {INDEX_FILENAME} not found. Unpack the '
                            'whole archive so that index.p and its images are together.')
  with open(path, 'rb') as f:
    raw = f.read()
  try:
    with Image.open(io.BytesIO(raw)) as img:
      img.load()  # decodes everything: a truncated file fails here, not at training time
      fmt = img.format
      if fmt in ('JPEG', 'PNG') and img.mode == 'RGB' and img.size == (size, size):
        return raw
      img = img.convert('RGB')
      if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BICUBIC)
      out = io.BytesIO()
      img.save(out, format='PNG', compress_level=1)
      return out.getvalue()
  except Exception as e:  # pylint: disable=broad-except
    # PIL reports damage as OSError, SyntaxError, ValueError, ... depending on the format.
    raise ValueError(f'{path}: cannot decode this image (truncated or corrupt?): '
                     f'{type(e).__name__}: {e}') from e


def examples(manual_dir, dataset: IndexDataset, train: bool, size: int | None = None):
  """Yields (key, example) of one split, for the TFDS builders; images at size² (default:
  the dataset's S)."""
  index_path = os.path.join(manual_dir, INDEX_FILENAME)
  if not os.path.isfile(index_path):
    raise FileNotFoundError(
        f'{index_path} not found: put the prepared {dataset.name} archive (index.p and its '
        f'images) in the manual directory (tfds_builders/{dataset.name}/README.md).')
  index = read_index(index_path, dataset)
  keep = keep_mask(index.joints, dataset.layout) & (index.train == train)
  logger.info('%s %s: %d of %d images have all four torso joints (upstream\'s filter).',
              dataset.name, 'train' if train else 'test', int(keep.sum()),
              int((index.train == train).sum()))
  size = size or dataset.image_size
  for i in np.flatnonzero(keep):
    rel = index.imgs[i]
    joints = index.joints[i]
    yield rel, {
        'image': load_image(os.path.join(manual_dir, rel), size),
        # × S for missing joints too, so that keypoints / S (the adversary's target) is the
        # index's own value, negative, exactly as upstream regressed it.
        'keypoints_2d': (joints * size).astype(np.float32),
        'person': person_id(rel, dataset),
        'sequence': rel,
        'frame': 0,
    }

