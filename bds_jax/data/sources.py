"""TFDS builders -> in-memory whole sequences (the protocol-free view of a dataset).

Every pose dataset is a TFDS builder in `tfds_builders/` writing array_record files, read back
TF-free with `as_data_source`. A split is small enough to hold in memory (Human3.6M train is
~0.3 GB at 50 Hz), which makes window slicing in the input pipeline O(1).
"""

import dataclasses
import importlib
import os

import numpy as np

from bds_jax import errors
from bds_jax import skeleton
from bds_jax.data import datasets

@dataclasses.dataclass
class SequenceSet:
  """Whole sequences of one split.

  Attributes:
    poses: one (frames, 17, 3) float32 array per sequence, metres, z up, 50 Hz.
    labels: (N,) int class of each sequence (behavior or action).
    label_names: class names.
    subjects: (N,) int subject index; `subject_names` gives the names.
    extras: other scalar features of the dataset, each an (N,) array (e.g. posture, seeds);
      text features as str arrays (Human3.6M's subaction, source_file and layout, which name
      each sequence exactly, e.g. for the HMP protocol's sequence list).
  """
  poses: list[np.ndarray]
  labels: np.ndarray
  label_names: tuple[str, ...]
  subjects: np.ndarray
  subject_names: tuple[str, ...]
  extras: dict[str, np.ndarray]
  name: str = ''
  split: str = ''

  def __len__(self):
    return len(self.poses)

  @property
  def lengths(self) -> np.ndarray:
    return np.array([len(p) for p in self.poses], np.int64)

  def onset_frames(self) -> np.ndarray | None:
    """(N,) raw frame of each sequence's behavior onset (synthetic_motion's `behavior_onset`,
    in seconds, to the nearest frame), or None where the dataset does not record it."""
    if 'behavior_onset' not in self.extras:
      return None
    return np.rint(np.asarray(self.extras['behavior_onset'], np.float64)
                   * skeleton.FPS).astype(np.int64)


def get_builder(name: str, data_dir: str | None, builder_config: str | None = None):
  """Instantiates the TFDS builder of dataset `name` (array_record format)."""
  builder_cls = importlib.import_module(datasets.get(name).builder).Builder
  kwargs = {'file_format': 'array_record'}
  if data_dir:
    kwargs['data_dir'] = os.path.expanduser(data_dir)
  if builder_config:
    names = [c.name for c in (builder_cls.BUILDER_CONFIGS or [])]
    if builder_config not in names:
      raise ValueError(
          f'data.builder_config={builder_config!r} is not a config of {name}; choose one of '
          f'{names}.')
    kwargs['config'] = builder_config
  return builder_cls(**kwargs)


def prepare(builder, name: str, prepare_mode: str = 'auto', manual_dir: str | None = None):
  """Makes sure the dataset is built; returns the builder.

  prepare_mode 'auto' builds a dataset that needs no user files (the synthetic one) when it is
  missing, and a manual-download dataset when `manual_dir` is given; 'never' only reads.
  """
  if prepare_mode not in ('auto', 'never'):
    raise ValueError(f"data.prepare={prepare_mode!r} must be 'auto' or 'never'.")
  if builder.is_prepared():
    _check_prepared(builder, name, manual_dir)
    return builder
  self_contained = datasets.get(name).self_contained
  if prepare_mode == 'auto' and (self_contained or manual_dir):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    download_config = None
    if manual_dir:
      if not os.path.isdir(os.path.expanduser(manual_dir)):
        raise FileNotFoundError(
            f'data.manual_dir={manual_dir!r} does not exist. Put the raw {name} files there '
            f'(see tfds_builders/{name}/README.md).')
      # try_download_gcs=False: no prepared copy of a manual dataset exists to fetch, and
      # looking for one needs the network.
      download_config = tfds.download.DownloadConfig(
          manual_dir=os.path.expanduser(manual_dir), try_download_gcs=False)
    builder.download_and_prepare(download_config=download_config)
    return builder
  how = (f'set --config.data.manual_dir to the folder with the raw files (see '
         f'tfds_builders/{name}/README.md)' if not self_contained else
         "run with --config.data.prepare=auto to build it")
  raise FileNotFoundError(
      f'Dataset {name} (version {builder.version}, config {builder.builder_config.name if builder.builder_config else "default"}) '
      f'is not built in data_dir {builder.data_dir_root!s}: {how}, or point '
      f'--config.data.data_dir at the folder that holds it.')


def _check_prepared(builder, name: str, manual_dir: str | None):
  """The builder module's own check of a built dataset against the manual dir given, where it
  has one (mocap_folder: a dataset built from another folder is refused, not silently used)."""
  check = getattr(importlib.import_module(datasets.get(name).builder), 'check_prepared', None)
  if check is not None:
    check(builder, manual_dir)


def _text_or_value(v):
  return v.decode() if isinstance(v, bytes) else v


def read_records(builder, name: str, split: str, transform=lambda r: r):
  """(data source, [transform(record) for every record]) of a prepared split; a damaged or cut
  shard is an InputError naming the dataset's folder and how to rebuild it."""
  if split not in builder.info.splits:
    raise errors.InputError(f'Split {split!r} is not in dataset {name}; it has '
                            f'{list(builder.info.splits)}.')
  try:
    source = builder.as_data_source(split)
    records = [transform(source[i]) for i in range(len(source))]
  except Exception as e:  # pylint: disable=broad-except
    # Array-record and decoding errors differ by damage (a cut file, zeros, a bad chunk).
    first = (str(e).strip().splitlines() or [''])[0][:200]
    raise errors.InputError(
        f'{name}/{split}: cannot read the prepared dataset in {builder.data_dir} '
        f'({type(e).__name__}: {first}); a shard is damaged or cut short. Delete that folder '
        f'(rm -r {builder.data_dir}) and run again to rebuild it.') from e
  if not records:
    raise errors.InputError(f'Split {split!r} of dataset {name} is empty.')
  return source, records


def load_split(builder, name: str, split: str) -> SequenceSet:
  """Reads every sequence of `split` into memory."""
  label_key = datasets.get(name).label_feature
  features = builder.info.features
  _, records = read_records(builder, name, split)
  poses = [skeleton.check_poses(r['poses'], f'{name}/{split} example {i} poses')
           for i, r in enumerate(records)]
  scalar_keys = [k for k, v in records[0].items()
                 if np.ndim(v) == 0 and k not in (label_key, 'subject')]
  return SequenceSet(
      poses=poses,
      labels=np.array([r[label_key] for r in records], np.int32),
      label_names=tuple(features[label_key].names),
      subjects=np.array([r['subject'] for r in records], np.int32),
      subject_names=tuple(features['subject'].names),
      extras={k: np.array([_text_or_value(r[k]) for r in records]) for k in scalar_keys},
      name=name, split=split)


def load_sequences(name: str, split: str, data_dir: str | None = None,
                   builder_config: str | None = None, prepare_mode: str = 'auto',
                   manual_dir: str | None = None) -> SequenceSet:
  """Builds the dataset if needed and allowed, then returns `split` as whole sequences."""
  builder = get_builder(name, data_dir, builder_config)
  prepare(builder, name, prepare_mode, manual_dir)
  return load_split(builder, name, split)
