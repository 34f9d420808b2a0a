"""Human3.6M video frames: where each (subject, sequence, camera) video is, and its frames.

Layout in the manual directory (the official `Videos_<S>.tgz` archives, unpacked):

  <root>/<S>/Videos/<stem>.<camera>.mp4     stem as the pose file's, e.g. 'Directions 1'
or, for frames already extracted (any tool; one image per frame, in frame order by name):
  <root>/<S>/Videos/<stem>.<camera>/*.jpg|*.png

Videos are decoded with imageio-ffmpeg, which scales every frame to S×S in ffmpeg (bicubic,
the aspect ratio is not kept, as upstream's resize); extracted frames are resized with PIL's
bicubic filter. Frame k of a video is pose frame k (both 50 Hz).
"""

import logging
import os
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

VIDEO_DIR = 'Videos'
FRAME_SUFFIXES = ('.jpg', '.jpeg', '.png')


def find_video(root, subject: str, stem: str, camera: str) -> Path | None:
  """The video file or frame folder of one (subject, sequence, camera), or None."""
  base = Path(root) / subject / VIDEO_DIR
  for path in (base / f'{stem}.{camera}.mp4', base / f'{stem}.{camera}'):
    if path.is_file() or path.is_dir():
      return path
  return None


def expected_path(root, subject: str, stem: str, camera: str) -> Path:
  return Path(root) / subject / VIDEO_DIR / f'{stem}.{camera}.mp4'


def frames(path, size: int, stride: int = 1,
           limit: int | None = None) -> Iterator[tuple[int, np.ndarray, tuple[int, int]]]:
  """Yields (frame index, uint8 (size, size, 3) image, source (width, height)) for every
  stride-th frame (from frame 0) of a video file or frame folder, up to `limit` frames.

  Raises:
    ValueError: a file that cannot be decoded (truncated, not a video or image), naming it.
  """
  path = Path(path)
  if path.is_dir():
    yield from _folder_frames(path, size, stride, limit)
  else:
    yield from _video_frames(path, size, stride, limit)


def _video_frames(path, size, stride, limit):
  import imageio_ffmpeg  # pylint: disable=g-import-not-at-top  # only this layout needs ffmpeg
  try:
    reader = imageio_ffmpeg.read_frames(
        str(path), output_params=['-vf', f'scale={size}:{size}:flags=bicubic'])
    meta = next(reader)
  except Exception as e:  # pylint: disable=broad-except
    # ffmpeg reports a damaged file as an OSError/RuntimeError with its log; keep the file name.
    raise ValueError(f'{path}: cannot open this video (truncated or corrupt?): '
                     f'{" ".join(str(e).split())[:300]}') from e
  source = tuple(int(v) for v in meta['source_size'])
  try:
    for index, raw in enumerate(reader):
      if limit is not None and index >= limit:
        break
      if index % stride == 0:
        yield index, np.frombuffer(raw, np.uint8).reshape(size, size, 3), source
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'{path}: decoding failed (truncated or corrupt?): '
                     f'{" ".join(str(e).split())[:300]}') from e
  finally:
    reader.close()  # stops ffmpeg when we break early


def _folder_frames(path, size, stride, limit):
  files = sorted(f for f in os.listdir(path) if f.lower().endswith(FRAME_SUFFIXES))
  if not files:
    raise ValueError(f'{path}: a frame folder with no {FRAME_SUFFIXES} images.')
  for index, name in enumerate(files[:limit]):
    if index % stride:
      continue
    try:
      with Image.open(path / name) as img:
        img.load()
        source = img.size
        img = img.convert('RGB')
        if img.size != (size, size):
          img = img.resize((size, size), Image.Resampling.BICUBIC)
        yield index, np.asarray(img), source
    except OSError as e:
      raise ValueError(f'{path / name}: cannot decode this frame (truncated or corrupt?): '
                       f'{e}') from e
