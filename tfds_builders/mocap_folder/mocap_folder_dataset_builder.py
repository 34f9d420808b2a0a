"""TFDS builder `mocap_folder`: a user's own motion capture, a folder of BVH / joint files.

The folder is the manual dir; mocap.json in it sets how files are read, classed and split
(tfds_builders/mocap_folder/folder.py, docs/own_mocap.md). Every file is read by
bds_jax.motion.read_motion (BVH, SMPL joint positions, VideoPose3D output, this project's .npy)
into the 17 joints of bds_jax.skeleton, metres, z up, 50 Hz: the layout of the other pose
datasets, so training and every evaluation suite read it as they read Human3.6M.

  builder = Builder(data_dir=d, file_format='array_record')
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=folder, try_download_gcs=False))

Bad files: with on_bad_file 'skip' (the default) each one is logged in one line that names it
and what was wrong, and the build goes on; the count is logged at the end and every skipped
file is listed with its reason in `info.metadata['skipped_files']`. A researcher's 2 000 files
should not fail on file 1 999; a split left with no usable file fails. Class and subject names
depend on the folder, so they are set when the dataset is built (and read back with it).
"""

import logging
import os

import numpy as np
import tensorflow_datasets as tfds

from bds_jax import errors
from bds_jax import skeleton
from bds_jax.motion import files as motion_files
from tfds_builders.mocap_folder import folder

log = logging.getLogger(__name__)


class Builder(tfds.core.GeneratorBasedBuilder):
  """Sequences of a user's motion files, labelled by folder, split by file or by subject."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Your own motion files: give the folder that holds them as the manual dir
(--config.data.manual_dir=<folder>). One subfolder per class (<folder>/<class>/.../*.bvh) makes
the classes; files directly in <folder> are one class, 'unlabelled'. Formats: .bvh, SMPL joint
positions (.npz / .npy), VideoPose3D output and this project's (T, 17, 3) .npy. An optional
<folder>/mocap.json sets the split, frame rate, units, up axis and joint map: see
docs/own_mocap.md.
"""

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'poses': tfds.features.Tensor(shape=(None, skeleton.NUM_JOINTS, 3),
                                          dtype=np.float32),
            # Names come from the folder at build time (`_split_generators`).
            'label': tfds.features.ClassLabel(),
            'subject': tfds.features.ClassLabel(),
            'source_file': tfds.features.Text(),
        }),
        homepage='https://arxiv.org/abs/2103.04677',
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = os.path.realpath(str(dl_manager.manual_dir))
    options = folder.read_options(root)
    entries, ignored = folder.entries(root, options)
    if ignored:
      log.info('%s: %d file(s) with other extensions than %s ignored.', root, ignored,
               ', '.join(options.extensions))
    self.info.features['label'].names = sorted({e.label for e in entries})
    self.info.features['subject'].names = sorted({e.subject for e in entries})
    self.info.metadata.update(manual_dir=root, fingerprint=folder.fingerprint(root, options),
                              num_files=len(entries), skipped_files=[])
    self._skipped = []
    return {name: self._generate_examples(root, options, [e for e in entries if e.test == test],
                                          name, len(entries))
            for name, test in (('train', False), ('test', True))}

  def _generate_examples(self, root, options, entries, split, total):
    count = 0
    for e in entries:
      try:
        poses = motion_files.read_motion(
            os.path.join(root, e.path), skeleton.FPS, format=options.format,
            source_fps=options.source_fps, units=options.units, up=options.up,
            joint_map=options.joint_map, retarget=options.retarget, place=options.place,
            min_frames=int(np.ceil(options.min_seconds * skeleton.FPS)))
      except (ValueError, OSError) as err:  # InputError is a ValueError
        if options.on_bad_file == 'fail':
          raise
        # The readers' messages are one line that starts with the file's path.
        reason = (errors.message(err).splitlines() or [type(err).__name__])[0]
        if e.path not in reason:
          reason = f'{os.path.join(root, e.path)}: {reason}'
        log.warning('Skipped %s', reason)
        self._skipped.append({'source_file': e.path, 'reason': reason})
        continue
      clips = poses if poses.ndim == 4 else poses[None]  # our .npy may hold several clips
      for i, clip in enumerate(clips):
        name = e.path if len(clips) == 1 else f'{e.path}[{i}]'
        count += 1
        yield name, {'poses': clip.astype(np.float32), 'label': e.label, 'subject': e.subject,
                     'source_file': name}
    # Recorded after each split, so the metadata written with the dataset lists every skip.
    self.info.metadata['skipped_files'] = list(self._skipped)
    bad = sum(s['source_file'] in {e.path for e in entries} for s in self._skipped)
    if bad:
      log.warning('mocap_folder/%s: %d of its %d files skipped as bad (%d of all %d so far); '
                  'metadata.json beside the dataset lists each with its reason.', split, bad,
                  len(entries), len(self._skipped), total)
    if not count:
      raise errors.InputError(
          f'{root}: no usable file in the {split} split ({len(entries)} file(s) there, '
          f'{len(self._skipped)} bad file(s) skipped in all); see the warnings above.')


def check_prepared(builder, manual_dir: str | None):
  """Refuses a dataset built from another folder than `manual_dir` (one data dir holds one
  folder's dataset); warns when the folder changed since the build."""
  if not manual_dir:
    return
  root = os.path.realpath(os.path.expanduser(manual_dir))
  built = builder.info.metadata.get('manual_dir')
  if built and built != root:
    raise errors.ConfigError(
        f'{builder.data_dir} holds the mocap_folder dataset built from {built}, not from {root}: '
        f'give each folder its own data dir (--config.data.data_dir=...), or delete '
        f'{builder.data_dir} to rebuild it from {root}.')
  if not os.path.isdir(root):
    return  # evaluating a run whose folder has gone: the built dataset is all it needs
  try:
    options = folder.read_options(root)
  except errors.InputError:
    return  # nothing to compare with; a rebuild would report it
  if built and builder.info.metadata.get('fingerprint') != folder.fingerprint(root, options):
    log.warning('%s changed (files or mocap.json) since the dataset in %s was built from it; '
                'the built dataset is used as it is. Delete that folder to rebuild.', root,
                builder.data_dir)
