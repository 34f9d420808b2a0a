r"""Builds DeepFashion or Market-1501 (upstream's prepared index.p archives) as array_record
files, without TensorFlow:

  python -m tfds_builders.index_images --dataset=deepfashion --manual_dir=DIR --data_dir=D \
      [--config=small]

or let training build it (`--config.data.manual_dir=DIR`). The builders are
tfds_builders/deepfashion and tfds_builders/market1501 (their shared part: index_builder.py).
Like tfds_builders/human36m/build.py this uses the builder classes directly, not
`bds_jax.data.sources`: builders never import bds_jax.data, which loads them by name.
"""

import os

from absl import app
from absl import flags
import tensorflow_datasets as tfds

from tfds_builders import deepfashion
from tfds_builders import market1501

BUILDERS = {'deepfashion': deepfashion.Builder, 'market1501': market1501.Builder}

_DATASET = flags.DEFINE_enum('dataset', None, sorted(BUILDERS), 'Which dataset.', required=True)
_MANUAL_DIR = flags.DEFINE_string('manual_dir', None, 'Folder holding index.p and the images.',
                                  required=True)
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data directory to write to.',
                                required=True)
_CONFIG = flags.DEFINE_enum('config', 'default', ['default', 'small'],
                            "Builder config: 'default' or 'small' (64 px).")


def build(name: str, data_dir: str, manual_dir: str, config: str = 'default'):
  """Prepares dataset `name` (a key of BUILDERS) from `manual_dir`; returns its builder."""
  manual_dir = os.path.expanduser(manual_dir)
  if not os.path.isdir(manual_dir):
    raise FileNotFoundError(f'--manual_dir={manual_dir!r} does not exist. Put the raw {name} '
                            f'files there (see tfds_builders/{name}/README.md).')
  builder = BUILDERS[name](config=config, data_dir=os.path.expanduser(data_dir),
                           file_format='array_record')
  # try_download_gcs=False: no prepared copy of a manual dataset exists to fetch, and looking
  # for one needs the network.
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=manual_dir, try_download_gcs=False))
  return builder


def main(argv):
  del argv
  builder = build(_DATASET.value, _DATA_DIR.value, _MANUAL_DIR.value, _CONFIG.value)
  sizes = {name: split.num_examples for name, split in builder.info.splits.items()}
  print(f'{builder.info.full_name}: {sizes} -> {builder.data_dir}')


if __name__ == '__main__':
  app.run(main)
