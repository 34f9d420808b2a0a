"""synthetic_motion: procedural 3D human motion in the Human3.6M 17-joint layout.

Generated on the fly by bds_jax.procedural (nothing is downloaded). Builds without TensorFlow:

  builder = Builder(config='small', data_dir=d, file_format='array_record')
  builder.download_and_prepare()
  train = builder.as_data_source('train')
"""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from bds_jax import skeleton
from bds_jax import procedural


@dataclasses.dataclass
class SyntheticMotionConfig(tfds.core.BuilderConfig):
  """Sequence length, repetitions per (subject, posture, behavior) and the generator seed."""
  num_frames: int = 300
  repetitions: int = 2
  seed: int = 0


class Builder(tfds.core.GeneratorBasedBuilder):
  """Every subject × start posture × behavior × repetition, at 50 Hz in metres (z up)."""

  VERSION = tfds.core.Version('1.1.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.',
                   '1.1.0': 'Per-example behavior_onset (seconds): the end of hold and transition.'}
  BUILDER_CONFIGS = [
      SyntheticMotionConfig(name='default', description='6 s sequences, 2 repetitions.',
                            num_frames=300, repetitions=2, seed=0),
      SyntheticMotionConfig(name='small', description='3.2 s sequences, 1 repetition (tests).',
                            num_frames=160, repetitions=1, seed=0),
  ]
  DEFAULT_CONFIG_NAME = 'default'

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'poses': tfds.features.Tensor(shape=(None, skeleton.NUM_JOINTS, 3),
                                          dtype=np.float32),
            'behavior': tfds.features.ClassLabel(names=procedural.BEHAVIORS),
            'posture': tfds.features.ClassLabel(names=procedural.POSTURES),
            'subject': tfds.features.ClassLabel(names=procedural.SUBJECTS),
            'behavior_seed': tfds.features.Scalar(dtype=np.int64),
            'placement_seed': tfds.features.Scalar(dtype=np.int64),
            'behavior_onset': tfds.features.Scalar(dtype=np.float32),
        }),
        supervised_keys=None,
        homepage='https://arxiv.org/abs/2103.04677',
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # procedural: nothing to download
    return {
        'train': self._generate_examples(procedural.TRAIN_SUBJECTS),
        'test': self._generate_examples(procedural.TEST_SUBJECTS),
    }

  def _generate_examples(self, subjects):
    config = self.builder_config
    yield from procedural.examples(subjects, config.num_frames, config.repetitions, config.seed)
