"""TFDS builder for Human3.6M 3D pose sequences (manual download, builds without TensorFlow).

One example per (subject, action, sub-action) sequence: 17- and 32-joint positions in metres at
50 Hz, z up, plus labels. Reading of the raw files lives in `bds_jax.h36m`; this module only maps
configs to splits. Build with `python -m tfds_builders.human36m.build` or, in Python,

  builder = Builder(config='subjects', data_dir=d, file_format='array_record')
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=m, try_download_gcs=False))
  train = builder.as_data_source('train')

Config names are `<scheme>` (layout auto-detected) or `<scheme>_<layout>` (layout forced):

  subjects            train S1 S5 S6 S7 S8, test S9 S11 (the paper's person split, spec §1.4).
  subjects_val        train S1 S5 S6 S7, validation S8, test S9 S11.
  generalize_walking  train: all 7 subjects, every action except Walking, WalkingDog,
                      WalkTogether; test: all 7 subjects, only those three actions.
  generalize_sitting  the same with Sitting, SittingDown, Purchases held out.

The action-held-out configs do what the paper describes; upstream's code kept the held-out
actions in its train list (reference-behavior-driven-synthesis.md §1.4). Like upstream's action
split they ignore subjects: train and test share subjects but never actions. Held-out splits are
configs rather than extra split names so that every config offers the same `train`/`test` names
and a build writes each sequence once. Other splits: pass a `Human36mConfig` with your own subject
and action lists.
"""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from bds_jax import skeleton
from bds_jax.h36m import actions as actions_lib
from bds_jax.h36m import formats
from bds_jax.h36m import kinematics

_CITATION = """\
@article{h36m_pami,
  author = {Ionescu, Catalin and Papava, Dragos and Olaru, Vlad and Sminchisescu, Cristian},
  title = {Human3.6M: Large Scale Datasets and Predictive Methods for 3D Human Sensing in
           Natural Environments},
  journal = {IEEE Transactions on Pattern Analysis and Machine Intelligence},
  volume = {36}, number = {7}, pages = {1325--1339}, year = {2014}}
@inproceedings{blattmann2021behavior,
  author = {Blattmann, Andreas and Milbich, Timo and Dorkenwald, Michael and Ommer, Bj{\\"o}rn},
  title = {Behavior-Driven Synthesis of Human Dynamics},
  booktitle = {CVPR}, year = {2021}}
"""

_TRAIN_SUBJECTS = ('S1', 'S5', 'S6', 'S7', 'S8')
_TEST_SUBJECTS = ('S9', 'S11')


# Not frozen: tfds.core.BuilderConfig is a plain (eq=False) dataclass, and a frozen subclass of it
# is not allowed.
@dataclasses.dataclass(eq=False)
class Human36mConfig(tfds.core.BuilderConfig):
  """What is read and how it is split.

  Attributes:
    layout: 'auto' (detect in the manual dir), 'cdf', 'npz' or 'expmap'.
    train_subjects: subjects of `train` (and `validation`).
    validation_subjects: subjects moved out of `train` into a `validation` split; none by default.
    test_subjects: subjects of `test`.
    held_out_actions: canonical actions removed from `train`/`validation`; when set, `test` holds
      only these actions.
    expmap_root: 'zero' (standard root-centred conversion) or 'keep', for the exp-map layout.
  """
  layout: str = 'auto'
  train_subjects: tuple[str, ...] = _TRAIN_SUBJECTS
  validation_subjects: tuple[str, ...] = ()
  test_subjects: tuple[str, ...] = _TEST_SUBJECTS
  held_out_actions: tuple[str, ...] = ()
  expmap_root: str = 'zero'

  def __post_init__(self):
    for field in ('train_subjects', 'validation_subjects', 'test_subjects', 'held_out_actions'):
      setattr(self, field, tuple(getattr(self, field)))  # Lists are accepted too.
    if self.layout != 'auto' and self.layout not in formats.LAYOUTS:
      raise ValueError(f"layout must be 'auto' or one of {formats.LAYOUTS}, got {self.layout!r}")
    if self.expmap_root not in kinematics.ROOT_MODES:
      raise ValueError(f'expmap_root must be one of {kinematics.ROOT_MODES}, got '
                       f'{self.expmap_root!r}')
    for s in self.train_subjects + self.validation_subjects + self.test_subjects:
      if s not in formats.SUBJECTS:
        raise ValueError(f'{self.name}: unknown subject {s!r}; expected {formats.SUBJECTS}')
    for a in self.held_out_actions:
      actions_lib.action_id(a)
    if not set(self.validation_subjects) <= set(self.train_subjects):
      raise ValueError(f'{self.name}: validation_subjects must be taken from train_subjects')
    # Without held-out actions a shared subject would put the same sequences in train and test.
    if not self.held_out_actions and set(self.train_subjects) & set(self.test_subjects):
      raise ValueError(f'{self.name}: train and test subjects overlap and no actions are held out')

  def split_filters(self) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Split name -> (subjects, canonical actions) it contains."""
    kept = tuple(a for a in actions_lib.ACTIONS if a not in self.held_out_actions)
    held = tuple(a for a in actions_lib.ACTIONS if a in self.held_out_actions)
    train = tuple(s for s in self.train_subjects if s not in self.validation_subjects)
    splits = {'train': (train, kept)}
    if self.validation_subjects:
      splits['validation'] = (self.validation_subjects, kept)
    splits['test'] = (self.test_subjects, held or actions_lib.ACTIONS)
    return splits


_SCHEMES = {
    'subjects': dict(
        description='Person split: train S1 S5 S6 S7 S8, test S9 S11.'),
    'subjects_val': dict(
        validation_subjects=('S8',),
        description='Person split with S8 as validation: train S1 S5 S6 S7, validation S8, '
        'test S9 S11.'),
    'generalize_walking': dict(
        train_subjects=formats.SUBJECTS, test_subjects=formats.SUBJECTS,
        held_out_actions=actions_lib.WALKING_ACTIONS,
        description='Walking, WalkingDog and WalkTogether held out of train; test = those '
        'actions. All subjects in both.'),
    'generalize_sitting': dict(
        train_subjects=formats.SUBJECTS, test_subjects=formats.SUBJECTS,
        held_out_actions=actions_lib.SITTING_ACTIONS,
        description='Sitting, SittingDown and Purchases held out of train; test = those actions. '
        'All subjects in both.'),
}


def _make_configs() -> list[Human36mConfig]:
  configs = []
  for scheme, kwargs in _SCHEMES.items():
    for layout in ('auto',) + formats.LAYOUTS:
      name = scheme if layout == 'auto' else f'{scheme}_{layout}'
      description = kwargs['description'] + (
          ' Layout auto-detected.' if layout == 'auto' else f' Layout {layout}.')
      configs.append(Human36mConfig(
          name=name, layout=layout, **{**kwargs, 'description': description}))
  return configs


class Builder(tfds.core.GeneratorBasedBuilder):
  """Human3.6M 3D pose sequences from the official CDF, VideoPose3D npz or exp-map release."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = _make_configs()
  DEFAULT_CONFIG_NAME = 'subjects'
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Human3.6M needs a licence: register at http://vision.imar.ro/human3.6m/ and download ONE of the
following into the manual directory (`--manual_dir`, default <data_dir>/downloads/manual/):

  (a) official CDF release: for each subject S in S1 S5 S6 S7 S8 S9 S11, the archive
      "Poses_D3_Positions_<S>.tgz" (Downloads > Training data > by subject > Poses > D3 Positions),
      unpacked in the manual directory, giving
        <manual_dir>/<S>/MyPoseFeatures/D3_Positions/<Action> <sub>.cdf
      (<manual_dir>/<S>/Poses_D3_Positions/... as extracted by h36m-fetch also works).
  (b) VideoPose3D's {formats.NPZ_FILENAME} (made from (a) by VideoPose3D's
      data/prepare_data_h36m.py), placed as
        <manual_dir>/{formats.NPZ_FILENAME}
  (c) the exponential-map release (h3.6m.zip, as used by motion-prediction work), unpacked as
        <manual_dir>/S<k>/<action>_<sub>.txt
      or <manual_dir>/h3.6m/dataset/S<k>/<action>_<sub>.txt

Put exactly one of these layouts in the directory, or pick a config ending in _cdf, _npz or
_expmap. See tfds_builders/human36m/README.md for details, time and disk estimates.
"""

  def __init__(self, *, skip_bad_files: bool = False, **kwargs):
    """Constructs the builder.

    Args:
      skip_bad_files: at preparation time, skip defective raw files (logged, and listed in
        `info.metadata['skipped_files']`) instead of failing.
      **kwargs: passed to `tfds.core.GeneratorBasedBuilder` (data_dir, config, file_format, ...).
    """
    self._skip_bad_files = skip_bad_files
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'poses': tfds.features.Tensor(shape=(None, skeleton.NUM_JOINTS, 3),
                                          dtype=np.float32),
            'poses_32': tfds.features.Tensor(shape=(None, formats.NUM_JOINTS_32, 3),
                                             dtype=np.float32),
            'subject': tfds.features.ClassLabel(names=formats.SUBJECTS),
            'action': tfds.features.ClassLabel(names=actions_lib.ACTIONS),
            'subaction': tfds.features.Text(),
            'source_file': tfds.features.Text(),
            'layout': tfds.features.Text(),
        }),
        homepage='http://vision.imar.ro/human3.6m/',
        citation=_CITATION,
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    config = self.builder_config
    reader = formats.H36MReader(
        dl_manager.manual_dir, config.layout, skip_bad_files=self._skip_bad_files,
        expmap_root=config.expmap_root)
    return {name: self._generate_examples(reader, name, subjects, actions)
            for name, (subjects, actions) in config.split_filters().items()}

  def _generate_examples(self, reader, split, subjects, actions):
    count = 0
    for seq in reader.sequences(subjects=subjects, actions=actions):
      count += 1
      yield seq.source_file, {
          'poses': seq.poses_32[:, list(skeleton.H36M_32_TO_17)],
          'poses_32': seq.poses_32,
          'subject': seq.subject,
          'action': seq.action,
          'subaction': seq.subaction,
          'source_file': seq.source_file,
          'layout': seq.layout,
      }
    if not count:
      raise ValueError(
          f'Split {split!r} of config {self.builder_config.name!r} is empty: no readable '
          f'sequences of subjects {subjects} and actions {actions} in {reader.root} '
          f'(layout {reader.layout}; {len(reader.skipped)} bad file(s) skipped).')
    # Recorded after each split so the metadata written with the dataset lists every skip.
    self.info.metadata['layout'] = reader.layout
    self.info.metadata['skipped_files'] = [
        {'source_file': b.source_file, 'reason': b.reason} for b in reader.skipped]
