r"""Builds the `mocap_folder` dataset from a folder of motion files and says what it holds.

  python -m tfds_builders.mocap_folder.build --manual_dir=/data/my_mocap --data_dir=data/tfds_mine \
      [--overwrite]

Training builds it on first use too; this is for a look before training: sequences, minutes
and classes per split, and every skipped file with its reason. --overwrite rebuilds (after
files or mocap.json changed). See docs/own_mocap.md.
"""

import collections
import os
import shutil

from absl import app
from absl import flags
import tensorflow_datasets as tfds

from bds_jax import errors
from bds_jax import skeleton
from tfds_builders.mocap_folder import mocap_folder_dataset_builder

_MANUAL_DIR = flags.DEFINE_string('manual_dir', None, 'The folder of motion files.',
                                  required=True)
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data directory to write to.',
                                required=True)
_OVERWRITE = flags.DEFINE_bool('overwrite', False,
                               'Rebuild even if the dataset already exists in data_dir.')


def build(data_dir: str, manual_dir: str, overwrite: bool = False):
  """Prepares the dataset (refusing one built from another folder) and returns its builder."""
  manual_dir = os.path.expanduser(manual_dir)
  if not os.path.isdir(manual_dir):
    raise FileNotFoundError(f'--manual_dir={manual_dir}: no such folder.')
  make = lambda: mocap_folder_dataset_builder.Builder(data_dir=os.path.expanduser(data_dir),
                                                       file_format='array_record')
  builder = make()
  if builder.is_prepared():
    if overwrite:
      # Deleted first and a fresh builder made: one made over the old build carries its class
      # names, which the folder's may no longer be (TFDS refuses to change them).
      shutil.rmtree(builder.data_dir)
      builder = make()
    else:
      mocap_folder_dataset_builder.check_prepared(builder, manual_dir)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=manual_dir, try_download_gcs=False))
  return builder


def summary(builder) -> str:
  """Per split: sequences, minutes and sequences per class; then the skipped files."""
  names = builder.info.features['label'].names
  lines = [f'{builder.info.full_name} in {builder.data_dir}, from '
           f'{builder.info.metadata.get("manual_dir")}:']
  for split in builder.info.splits:
    source = builder.as_data_source(split)
    frames, classes = 0, collections.Counter()
    for i in range(len(source)):
      record = source[i]
      frames += len(record['poses'])
      classes[names[int(record['label'])]] += 1
    lines.append(f'  {split}: {len(source)} sequences, {frames / skeleton.FPS / 60:.1f} min; '
                 + ', '.join(f'{c} {n}' for c, n in sorted(classes.items())))
  skipped = builder.info.metadata.get('skipped_files', [])
  lines.append(f'  {len(skipped)} bad file(s) skipped' + (':' if skipped else '.'))
  lines += [f'    {s["reason"]}' for s in skipped]
  return '\n'.join(lines)


def main(argv):
  del argv
  print(summary(build(_DATA_DIR.value, _MANUAL_DIR.value, _OVERWRITE.value)))


if __name__ == '__main__':
  errors.main_with_clear_errors(lambda: app.run(main))
