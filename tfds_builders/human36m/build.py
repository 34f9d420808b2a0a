r"""Builds the `human36m` TFDS dataset as array_record files, without TensorFlow.

  python -m tfds_builders.human36m.build --manual_dir=/data/h36m_raw --data_dir=/data/tfds \
      [--config=subjects] [--skip_bad_files] [--overwrite]

`--config` takes one or more comma-separated config names (see human36m_dataset_builder.py).
The `tfds build` CLI is not used because it imports TensorFlow.
"""

from absl import app
from absl import flags
from absl import logging
import tensorflow_datasets as tfds

from tfds_builders.human36m import human36m_dataset_builder

_MANUAL_DIR = flags.DEFINE_string(
    'manual_dir', None, 'Directory holding one Human3.6M layout (see README.md).', required=True)
_DATA_DIR = flags.DEFINE_string(
    'data_dir', None, 'TFDS data directory to write to.', required=True)
_CONFIG = flags.DEFINE_list(
    'config', [human36m_dataset_builder.Builder.DEFAULT_CONFIG_NAME],
    'Builder config name(s), comma-separated.')
_SKIP_BAD_FILES = flags.DEFINE_bool(
    'skip_bad_files', False, 'Skip defective raw files (logged) instead of failing.')
_OVERWRITE = flags.DEFINE_bool(
    'overwrite', False, 'Rebuild even if the dataset already exists in data_dir.')


def build(config: str, data_dir: str, manual_dir: str, skip_bad_files: bool = False,
          overwrite: bool = False) -> human36m_dataset_builder.Builder:
  """Prepares one config and returns its builder."""
  builder = human36m_dataset_builder.Builder(
      config=config, data_dir=data_dir, file_format='array_record',
      skip_bad_files=skip_bad_files)
  mode = (tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if overwrite
          else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
  # try_download_gcs=False: there is no prepared copy of Human3.6M to fetch, and looking for one
  # would need the network.
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=manual_dir, download_mode=mode, try_download_gcs=False))
  return builder


def main(argv):
  del argv
  for config in _CONFIG.value:
    builder = build(config, _DATA_DIR.value, _MANUAL_DIR.value, _SKIP_BAD_FILES.value,
                    _OVERWRITE.value)
    sizes = {name: split.num_examples for name, split in builder.info.splits.items()}
    skipped = builder.info.metadata.get('skipped_files', [])
    logging.info('Built %s in %s: %s sequences per split, layout %s, %d file(s) skipped.',
                 builder.info.full_name, builder.data_dir, sizes,
                 builder.info.metadata.get('layout'), len(skipped))
    print(f'{builder.info.full_name}: {sizes} -> {builder.data_dir}')


if __name__ == '__main__':
  app.run(main)
