r"""Builds `human36m_frames` as array_record files, without TensorFlow.

  python -m tfds_builders.human36m_frames.build --manual_dir=/data/h36m_raw \
      --data_dir=/data/tfds [--config=default|every_frame|small] [--overwrite]
"""

from absl import app
from absl import flags
import tensorflow_datasets as tfds

from tfds_builders.human36m_frames import human36m_frames_dataset_builder as frames_builder

_MANUAL_DIR = flags.DEFINE_string('manual_dir', None, 'Poses, videos and cameras (README.md).',
                                  required=True)
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data directory to write to.',
                                required=True)
_CONFIG = flags.DEFINE_string('config', 'default', 'Builder config name.')
_OVERWRITE = flags.DEFINE_bool('overwrite', False, 'Rebuild even if it exists in data_dir.')


def main(argv):
  del argv
  builder = frames_builder.Builder(config=_CONFIG.value, data_dir=_DATA_DIR.value,
                                   file_format='array_record')
  mode = (tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if _OVERWRITE.value
          else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=_MANUAL_DIR.value, download_mode=mode, try_download_gcs=False))
  sizes = {name: split.num_examples for name, split in builder.info.splits.items()}
  print(f'{builder.info.full_name}: {sizes} -> {builder.data_dir}')


if __name__ == '__main__':
  app.run(main)
