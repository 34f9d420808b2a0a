"""The shared TFDS builder of DeepFashion and Market-1501 (upstream's prepared index.p archives).

Reading and checking the files is `bds_jax.imaging.index_images`; this maps it onto TFDS. Each
example is one image that passed upstream's torso filter:

  image         S×S RGB (encoded bytes: the original JPEG/PNG when already S×S, else PNG)
  keypoints_2d  (18, 2) float32: the index's joints × S (pixels), in the dataset's joint order;
                negative = missing (upstream's convention)
  person        person id read off the path, or 'image:<path>' (a dummy id per image)
  sequence      the image's path relative to index.p; frame: 0 (one image per "sequence")

Build one with `python -m tfds_builders.index_images` (tfds_builders/index_images.py), or let
training build it (`--config.data.manual_dir=DIR`). Builders never import `bds_jax.data`, which
loads them by name (tests/test_imports.py checks both).
"""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from bds_jax.imaging import index_images

_CITATION = """\
@inproceedings{esser2018variational,
  author = {Esser, Patrick and Sutter, Ekaterina and Ommer, Bj{\\"o}rn},
  title = {A Variational U-Net for Conditional Appearance and Shape Generation},
  booktitle = {CVPR}, year = {2018}}
@inproceedings{blattmann2021behavior,
  author = {Blattmann, Andreas and Milbich, Timo and Dorkenwald, Michael and Ommer, Bj{\\"o}rn},
  title = {Behavior-Driven Synthesis of Human Dynamics},
  booktitle = {CVPR}, year = {2021}}
"""


def instructions(dataset: index_images.IndexDataset, archive: str, images: str) -> str:
  return f"""\
Download upstream's prepared {dataset.name} archive: `{archive}.tar.gz`, the one that
CompVis/vunet's download_data.sh fetches (`download_data.sh {archive} <dest>`) and that the
Behavior-Driven Synthesis README points to for the appearance model. Unpack it and make its
folder the manual directory (`--manual_dir`, default <data_dir>/downloads/manual/), so that

  <manual_dir>/index.p          the pickled index (imgs, joints, train[, joint_order])
  <manual_dir>/<imgs[i]>        every image it lists ({images}), paths relative to index.p

index.p is read with a restricted unpickler (plain data only). Its joints must be normalised
to [0, 1] in the order {list(dataset.layout.joint_names)}.
"""


@dataclasses.dataclass(eq=False)
class IndexImagesConfig(tfds.core.BuilderConfig):
  """image_size: S, the stored side (0: the dataset's own, 256 DeepFashion, 128 Market)."""
  image_size: int = 0


def configs(default_size: int) -> list[IndexImagesConfig]:
  return [
      IndexImagesConfig(name='default', image_size=default_size,
                        description=f'{default_size} px, as upstream.'),
      IndexImagesConfig(name='small', image_size=64,
                        description='64 px: quick looks and tests (configs/appearance.py:smoke).'),
  ]


class IndexImagesBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the index.p builders; subclasses set DATASET and the TFDS class attributes."""

  DATASET: index_images.IndexDataset
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  DEFAULT_CONFIG_NAME = 'default'

  def _info(self) -> tfds.core.DatasetInfo:
    d = self.DATASET
    size = self.builder_config.image_size or d.image_size
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(size, size, 3)),
            'keypoints_2d': tfds.features.Tensor(shape=(d.layout.num_joints, 2),
                                                 dtype=np.float32),
            'person': tfds.features.Text(),
            'sequence': tfds.features.Text(),
            'frame': tfds.features.Scalar(dtype=np.int64),
        }),
        supervised_keys=None,
        citation=_CITATION,
        metadata=tfds.core.MetadataDict(layout=d.layout.name),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    manual = str(dl_manager.manual_dir)
    return {'train': self._generate_examples(manual, True),
            'test': self._generate_examples(manual, False)}

  def _generate_examples(self, manual_dir, train):
    size = self.builder_config.image_size or self.DATASET.image_size
    return index_images.examples(manual_dir, self.DATASET, train, size)

