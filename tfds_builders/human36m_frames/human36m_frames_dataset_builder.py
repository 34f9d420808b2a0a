"""human36m_frames: Human3.6M video frames with their 17 joints projected into the image.

The appearance model's Human3.6M data (reference spec §1.8): every `stride`-th frame of each
(subject, sequence, camera) video, resized to S×S, with the world joints of the same pose frame
projected through that camera. Reads from the manual directory:

  world poses     the official D3_Positions CDFs or VideoPose3D's data_3d_h36m.npz (the
                  `human36m` builder's layouts (a)/(b); the exp-map release is root-centred
                  and cannot be projected)
  videos          <S>/Videos/<stem>.<camera>.mp4 or extracted frame folders
                  (bds_jax/h36m/videos.py)
  cameras         camera-parameters.json (source and format: bds_jax/h36m/cameras.py)

Splits by subject: train S1 S5 S6 S7 S8, test S9 S11 (upstream trained its appearance model on
all subjects). Features: `image` (S×S JPEG), `keypoints_2d` (17, 2) pixels at S,
`keypoints_3d` (17, 3) world metres, `intrinsics` (3, 3) for the S×S image, `extrinsics`
[R | t] (3, 4) with t in metres, `subject`, `action`, `subaction`, `camera`, `sequence`
('<S>/<stem>.<camera>'), `frame` (50 Hz index). A video that is missing, cannot be decoded or
is more than a second shorter than its poses stops the build, naming the file, except upstream's
blacklisted corrupt video (S11 Directions, camera 54138969), which is skipped with a warning.

Build: python -m tfds_builders.human36m_frames.build --manual_dir=DIR --data_dir=D [--config=...]
"""

import dataclasses
import io
import logging
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from bds_jax import skeleton
from bds_jax.h36m import actions as actions_lib
from bds_jax.h36m import cameras as cameras_lib
from bds_jax.h36m import formats
from bds_jax.h36m import videos

logger = logging.getLogger(__name__)

# Upstream's blacklist (reference spec §1.1): this video is corrupt in the release.
KNOWN_CORRUPT = (('S11', 'Directions', '54138969'),)
# Videos may end a few frames before or after the mocap; more than this is a damaged file.
MAX_MISSING_FRAMES = 50


@dataclasses.dataclass(eq=False)
class FramesConfig(tfds.core.BuilderConfig):
  """image_size: S; stride: every stride-th frame (50 / stride Hz); cameras; the subject split;
  pose_layout: 'auto', 'cdf' or 'npz'; jpeg_quality of the stored frames."""
  image_size: int = 256
  stride: int = 5
  cameras: tuple[str, ...] = cameras_lib.CAMERAS
  train_subjects: tuple[str, ...] = ('S1', 'S5', 'S6', 'S7', 'S8')
  test_subjects: tuple[str, ...] = ('S9', 'S11')
  pose_layout: str = 'auto'
  jpeg_quality: int = 95

  def __post_init__(self):
    if self.image_size < 8 or self.stride < 1:
      raise ValueError(f'{self.name}: image_size >= 8 and stride >= 1 expected.')
    if self.pose_layout not in ('auto', 'cdf', 'npz'):
      raise ValueError(f"{self.name}: pose_layout must be 'auto', 'cdf' or 'npz' (world-frame "
                       f'poses), got {self.pose_layout!r}.')
    for cam in self.cameras:
      if cam not in cameras_lib.CAMERAS:
        raise ValueError(f'{self.name}: unknown camera {cam!r}; expected {cameras_lib.CAMERAS}.')


def pose_stem(seq: formats.Sequence) -> str:
  """The file stem the sequence's videos share: 'Directions 1' of '.../Directions 1.cdf' or of
  'data_3d_h36m.npz::S1/Directions 1'."""
  if seq.layout == 'npz':
    return seq.source_file.split('::', 1)[1].split('/', 1)[1]
  return Path(seq.source_file).stem


def scaled_intrinsics(k: np.ndarray, source_size, size: int) -> np.ndarray:
  """K of the video -> K of its frames resized to size×size (x by S/W, y by S/H)."""
  w, h = source_size
  return np.diag([size / w, size / h, 1.0]) @ k


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
  out = io.BytesIO()
  Image.fromarray(image).save(out, format='JPEG', quality=quality)
  return out.getvalue()


class Builder(tfds.core.GeneratorBasedBuilder):
  """Human3.6M video frames with projected 17-joint keypoints."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [
      FramesConfig(name='default', description='256 px, every 5th frame (10 Hz), 4 cameras.'),
      FramesConfig(name='every_frame', stride=1,
                   description='256 px, every frame (50 Hz), as upstream kept them.'),
      FramesConfig(name='small', image_size=64, stride=10,
                   description='64 px, every 10th frame: quick looks and tests.'),
  ]
  DEFAULT_CONFIG_NAME = 'default'
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Human3.6M needs a licence (http://vision.imar.ro/human3.6m/). Into the manual directory
(`--manual_dir`) put, for each subject S in S1 S5 S6 S7 S8 S9 S11:
  * the world poses: Poses_D3_Positions_<S>.tgz unpacked (<S>/MyPoseFeatures/D3_Positions/
    <stem>.cdf), or one data_3d_h36m.npz for all subjects (VideoPose3D);
  * the videos: Videos_<S>.tgz unpacked, giving <S>/Videos/<stem>.<camera>.mp4
    (or extracted frames as <S>/Videos/<stem>.<camera>/*.jpg);
and once {cameras_lib.CAMERA_FILENAME} from github.com/karfly/human36m-camera-parameters.
See tfds_builders/human36m_frames/README.md.
"""

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.image_size
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(size, size, 3), encoding_format='jpeg'),
            'keypoints_2d': tfds.features.Tensor(shape=(skeleton.NUM_JOINTS, 2),
                                                 dtype=np.float32),
            'keypoints_3d': tfds.features.Tensor(shape=(skeleton.NUM_JOINTS, 3),
                                                 dtype=np.float32),
            'intrinsics': tfds.features.Tensor(shape=(3, 3), dtype=np.float32),
            'extrinsics': tfds.features.Tensor(shape=(3, 4), dtype=np.float32),
            'subject': tfds.features.ClassLabel(names=formats.SUBJECTS),
            'action': tfds.features.ClassLabel(names=actions_lib.ACTIONS),
            'subaction': tfds.features.Text(),
            'camera': tfds.features.Text(),
            'sequence': tfds.features.Text(),
            'frame': tfds.features.Scalar(dtype=np.int64),
        }),
        homepage='http://vision.imar.ro/human3.6m/',
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    c = self.builder_config
    root = Path(dl_manager.manual_dir)
    reader = formats.H36MReader(root, c.pose_layout)
    if reader.layout == 'expmap':
      raise ValueError(f'{root}: only exp-map poses found; projecting joints into the videos '
                       'needs world-frame poses (the D3_Positions CDFs or data_3d_h36m.npz).')
    cams = cameras_lib.load_cameras(root / cameras_lib.CAMERA_FILENAME,
                                    c.train_subjects + c.test_subjects, c.cameras)
    return {'train': self._generate_examples(root, reader, cams, c.train_subjects),
            'test': self._generate_examples(root, reader, cams, c.test_subjects)}

  def _generate_examples(self, root, reader, cams, subjects):
    c = self.builder_config
    count = 0
    for seq in reader.sequences(subjects=subjects):
      count += 1
      stem = pose_stem(seq)
      joints = seq.poses_32[:, list(skeleton.H36M_32_TO_17)]
      for cam in c.cameras:
        known_bad = (seq.subject, seq.action, cam) in KNOWN_CORRUPT
        path = videos.find_video(root, seq.subject, stem, cam)
        if path is None:
          if known_bad:
            continue
          raise FileNotFoundError(
              f'{videos.expected_path(root, seq.subject, stem, cam)} not found (the video of '
              f'{seq.source_file}, camera {cam}). Unpack Videos_{seq.subject}.tgz into the '
              'manual directory, or build a config with fewer cameras.')
        try:
          yield from self._video_examples(path, seq, stem, cam, joints, cams[(seq.subject, cam)])
        except ValueError as e:
          if not known_bad:
            raise
          logger.warning('Skipping the known corrupt video %s (upstream skipped it): %s', path, e)
    if not count:
      raise ValueError(f'{root}: no {reader.layout} poses of subjects {subjects}; this split '
                       'would be empty (see tfds_builders/human36m_frames/README.md).')

  def _video_examples(self, path, seq, stem, cam, joints, camera):
    c = self.builder_config
    size, n = c.image_size, len(joints)
    key = f'{seq.subject}/{stem}.{cam}'
    last = -1
    for frame, image, source in videos.frames(path, size, c.stride, limit=n):
      last = frame
      uv, _ = cameras_lib.project(joints[frame], camera)
      uv = uv * (size / np.array(source, np.float64))
      # Behind the camera (never in genuine data) counts as missing.
      uv = np.where(np.isfinite(uv).all(-1, keepdims=True), uv, -1.0)
      yield f'{key}/{frame}', {
          'image': encode_jpeg(image, c.jpeg_quality),
          'keypoints_2d': uv.astype(np.float32),
          'keypoints_3d': joints[frame],
          'intrinsics': scaled_intrinsics(camera.intrinsics, source, size).astype(np.float32),
          'extrinsics': camera.extrinsics_m().astype(np.float32),
          'subject': seq.subject, 'action': seq.action, 'subaction': seq.subaction,
          'camera': cam, 'sequence': key, 'frame': frame,
      }
    decoded = last + 1 if last >= 0 else 0
    if decoded < n - MAX_MISSING_FRAMES - c.stride:
      raise ValueError(f'{path}: about {decoded} frames decoded but {seq.source_file} has {n} '
                       'pose frames (truncated video?).')
