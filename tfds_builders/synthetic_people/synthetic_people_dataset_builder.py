"""synthetic_people: the synthetic motion dataset's subjects rendered as clothed RGB people.

Generated on the fly by bds_jax.procedural (nothing is downloaded). Builds without TensorFlow:

  builder = Builder(config='small', data_dir=d, file_format='array_record')
  builder.download_and_prepare()
  train = builder.as_data_source('train')

Each example is one frame of a synthetic_motion sequence (the same keys and seeds as that
dataset's examples) seen by the sequence's camera, worn by the subject's body in the sequence's
outfit. Stored parameters reproduce every image exactly: `people.render_person(subject,
keypoints_3d, camera.Camera.from_arrays(intrinsics, extrinsics, image_size),
supersample=config.supersample, outfit_seed=outfit_seed)`.
"""

import dataclasses
import zlib

import imageio.v3 as iio
import numpy as np
import tensorflow_datasets as tfds

from bds_jax import skeleton
from bds_jax import procedural
from bds_jax.procedural import camera as camera_lib
from bds_jax.procedural import people


@dataclasses.dataclass(eq=False)
class SyntheticPeopleConfig(tfds.core.BuilderConfig):
  """What is rendered.

  Attributes:
    image_size: square image side in pixels.
    num_frames: frames of each generated sequence (50 Hz).
    stride: every stride-th frame of a sequence becomes an example (from frame 0).
    repetitions: sequences per (subject, posture, behavior).
    postures, behaviors: the subsets rendered (empty: all).
    supersample: rays per pixel along each axis.
    outfits: 'sequence': every sequence wears its own random outfit
      (appearance.random_outfit of its `outfit_seed`), so a person is a (subject, outfit) and
      no body shape names a look; 'subject': each subject always wears their designed look
      (outfit_seed -1; an appearance model can then learn the five training looks from the
      bone lengths alone and ignore its appearance code).
    seed: dataset seed; sequence, camera and outfit seeds derive from it and the sequence key.
  """
  image_size: int = 128
  num_frames: int = 160
  stride: int = 10
  repetitions: int = 1
  postures: tuple[str, ...] = ()
  behaviors: tuple[str, ...] = ()
  supersample: int = 2
  outfits: str = 'sequence'
  seed: int = 0


OUTFITS = ('sequence', 'subject')


def _key_seed(seed: int, key: str, stream: int) -> int:
  state = np.random.SeedSequence([int(seed), zlib.crc32(key.encode()), stream]).generate_state(1)
  return int(state[0] >> 1)


def camera_seed(seed: int, key: str) -> int:
  """Seed of a sequence's camera, a stable function of the dataset seed and the key."""
  return _key_seed(seed, key, 1)


def outfit_seed(seed: int, key: str, outfits: str = 'sequence') -> int:
  """Seed of a sequence's outfit (-1: the subject's designed look)."""
  if outfits not in OUTFITS:
    raise ValueError(f'outfits={outfits!r}: expected one of {OUTFITS}.')
  return _key_seed(seed, key, 2) if outfits == 'sequence' else -1


def encode_png(image: np.ndarray) -> bytes:
  """Lossless PNG; the fastest zlib level (images are small, encoding time dominates)."""
  return iio.imwrite('<bytes>', image, extension='.png', compress_level=1)


class Builder(tfds.core.GeneratorBasedBuilder):
  """Frames of every subject × posture × behavior sequence, rendered as RGB people."""

  VERSION = tfds.core.Version('1.1.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.',
                   '1.1.0': 'Every sequence wears its own random outfit (`outfit_seed`).'}
  BUILDER_CONFIGS = [
      SyntheticPeopleConfig(
          name='default', description='128 px, 3.2 s sequences, every 10th frame (16 each).',
          image_size=128, num_frames=160, stride=10),
      SyntheticPeopleConfig(
          name='demo', description='64 px, 3.2 s sequences, every 5th frame (32 each): the '
          'CPU demo of the appearance model (configs/appearance.py:demo).',
          image_size=64, num_frames=160, stride=5),
      SyntheticPeopleConfig(
          name='small', description='64 px, 2 postures × 2 behaviors, 2 frames each (tests).',
          image_size=64, num_frames=60, stride=30, postures=('standing', 'sitting'),
          behaviors=('wave', 'squat')),
  ]
  DEFAULT_CONFIG_NAME = 'default'

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.image_size
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(size, size, 3), encoding_format='png'),
            'keypoints_2d': tfds.features.Tensor(shape=(skeleton.NUM_JOINTS, 2),
                                                 dtype=np.float32),
            'keypoints_3d': tfds.features.Tensor(shape=(skeleton.NUM_JOINTS, 3),
                                                 dtype=np.float32),
            'intrinsics': tfds.features.Tensor(shape=(3, 3), dtype=np.float32),
            'extrinsics': tfds.features.Tensor(shape=(3, 4), dtype=np.float32),
            'subject': tfds.features.ClassLabel(names=procedural.SUBJECTS),
            'behavior': tfds.features.ClassLabel(names=procedural.BEHAVIORS),
            'posture': tfds.features.ClassLabel(names=procedural.POSTURES),
            'sequence': tfds.features.Text(),
            'frame': tfds.features.Scalar(dtype=np.int64),
            'behavior_seed': tfds.features.Scalar(dtype=np.int64),
            'placement_seed': tfds.features.Scalar(dtype=np.int64),
            'camera_seed': tfds.features.Scalar(dtype=np.int64),
            'outfit_seed': tfds.features.Scalar(dtype=np.int64),
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
    postures = config.postures or procedural.POSTURES
    behaviors = config.behaviors or procedural.BEHAVIORS
    for subject in subjects:
      for posture in postures:
        for behavior in behaviors:
          for rep in range(config.repetitions):
            key = f'{subject}/{posture}/{behavior}/{rep}'
            yield from self._sequence(key, subject, posture, behavior)

  def _sequence(self, key, subject, posture, behavior):
    config = self.builder_config
    # The same seeds as procedural.examples, so a key names the same motion in both datasets.
    behavior_seed, placement_seed = procedural.example_seeds(config.seed, key)
    poses = procedural.render(subject, posture, behavior, behavior_seed, placement_seed,
                             config.num_frames)
    cam_seed = camera_seed(config.seed, key)
    outfit = outfit_seed(config.seed, key, config.outfits)
    # Rounded to float32 as stored, so the stored camera redraws the image exactly.
    cam = camera_lib.camera_from_seed(cam_seed, poses, config.image_size).rounded()
    keypoints = camera_lib.project(poses, cam).astype(np.float32)
    labels = {'subject': subject, 'behavior': behavior, 'posture': posture, 'sequence': key,
              'behavior_seed': behavior_seed, 'placement_seed': placement_seed,
              'camera_seed': cam_seed, 'outfit_seed': outfit,
              'intrinsics': cam.intrinsics.astype(np.float32),
              'extrinsics': cam.extrinsics.astype(np.float32)}
    for frame in range(0, config.num_frames, config.stride):
      image = people.render_person(subject, poses[frame], cam,
                                   supersample=config.supersample, outfit_seed=outfit)
      yield f'{key}/{frame}', {
          'image': encode_png(image), 'keypoints_2d': keypoints[frame],
          'keypoints_3d': poses[frame], 'frame': frame, **labels}
