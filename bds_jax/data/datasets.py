"""One `DatasetSpec` per dataset: everything the code decides by dataset, under one name.

  spec = datasets.get(config.data.name)   # unknown names: an error naming the known ones
  spec.builder          # 'tfds_builders.human36m': the module with its TFDS Builder
  spec.label_feature    # the feature that names a sequence's class ('action'), or None
  spec.keypoints        # image datasets: the layout of their 2D keypoints (bds_jax.imaging)
  spec.hmp_protocol     # Human3.6M's stochastic-HMP protocol (its windows and CMD constants)
  spec.true_renderings  # a generator that renders the truth of any transfer (synthetic data)

Code asks a spec, never a dataset's name: a new dataset is its builder in `tfds_builders/` plus
one row in `SPECS` (or `register` from outside the package; docs/architecture.md, "A new
dataset"). Builders are named by module path and imported by the readers
(`bds_jax.data.sources`), so that a builder may use the library without a loop.
"""

import dataclasses

from bds_jax import errors
from bds_jax import imaging


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """What the code needs to know about one dataset.

  Attributes:
    name: config.data.name, also its TFDS builder's name.
    builder: the dotted module that holds its `Builder` (and optionally `check_prepared`).
    title: its name in tables and captions ('Human3.6M').
    label_feature: the sequence feature holding its class (behavior, action, folder), or None.
    self_contained: builds with no user files (the embedded synthetic datasets).
    keypoints: for image datasets, the layout of their 2D keypoints (stickmen, part crops, the
      adversary's targets; `bds_jax.imaging`); None for pose datasets.
    image_dataset: for a pose dataset, the image dataset of its video frames, if any.
    hmp_protocol: the stochastic-HMP protocol's own dataset (Human3.6M): its window list and
      counts are checked, and its published CMD constants apply.
    paper_tables: the paper's behavior tables (1-4) were measured on it.
    paper_table5: a column of the paper's Table 5 (appearance).
    pose_guided_size: the resolution of the newer published pose-guided rows on it.
    true_renderings: its generator renders the truth of a transfer (any behavior from any
      posture; any person in any pose), so the ground-truth suites apply.
  """
  name: str
  builder: str
  title: str
  label_feature: str | None = None
  self_contained: bool = False
  keypoints: object = None
  image_dataset: str | None = None
  hmp_protocol: bool = False
  paper_tables: bool = False
  paper_table5: bool = False
  pose_guided_size: str | None = None
  true_renderings: bool = False

  @property
  def is_images(self) -> bool:
    return self.keypoints is not None


SPECS: dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec('synthetic_motion', 'tfds_builders.synthetic_motion', 'synthetic motion',
                label_feature='behavior', self_contained=True, true_renderings=True),
    DatasetSpec('human36m', 'tfds_builders.human36m', 'Human3.6M', label_feature='action',
                image_dataset='human36m_frames', hmp_protocol=True, paper_tables=True),
    # A user's own folder of motion files (docs/own_mocap.md): classes from its folders.
    DatasetSpec('mocap_folder', 'tfds_builders.mocap_folder', 'own motion capture',
                label_feature='label'),
    # Images (the appearance model): read through bds_jax/data/images.py, not load_split.
    DatasetSpec('synthetic_people', 'tfds_builders.synthetic_people', 'synthetic people',
                label_feature='behavior', self_contained=True, keypoints=imaging.H36M_17,
                true_renderings=True),
    DatasetSpec('deepfashion', 'tfds_builders.deepfashion', 'DeepFashion',
                keypoints=imaging.DEEPFASHION, paper_table5=True, pose_guided_size='256×176'),
    DatasetSpec('market1501', 'tfds_builders.market1501', 'Market-1501',
                keypoints=imaging.MARKET, paper_table5=True, pose_guided_size='128×64'),
    DatasetSpec('human36m_frames', 'tfds_builders.human36m_frames', 'Human3.6M frames',
                keypoints=imaging.H36M_17),
)}


def register(spec: DatasetSpec) -> None:
  """Adds (or replaces) a dataset's row, e.g. a builder that lives outside this repository."""
  SPECS[spec.name] = spec


def get(name: str) -> DatasetSpec:
  if name not in SPECS:
    raise errors.ConfigError(f'data.name={name!r} is not a known dataset; choose one of '
                             f'{sorted(SPECS)}.')
  return SPECS[name]


def follows_hmp_protocol(name: str) -> bool:
  """Whether sequences named `name` are the HMP protocol's own dataset (False for the names of
  in-memory sets that no builder made)."""
  spec = SPECS.get(name)
  return bool(spec and spec.hmp_protocol)


def image_datasets() -> list[str]:
  return sorted(n for n, s in SPECS.items() if s.is_images)
