"""Writing frames (T, H, W, 3) uint8 as MP4 (H.264 through imageio-ffmpeg), GIF or PNG stills.

MP4 is the default everywhere: small, and it plays in every browser (the HTML report embeds
it); GIF on request. Files are written to a temporary name and renamed, so an interrupted write
never leaves a half file under the final name.
"""

import os
import warnings

import imageio.v3 as iio
import numpy as np

FORMATS = ('mp4', 'gif')


def _even(frames: np.ndarray) -> np.ndarray:
  """H.264 with yuv420p needs even sizes: pad one white row/column where needed."""
  h, w = frames.shape[1:3]
  return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=255)


def write(path: str, frames, fps: float) -> str:
  """Writes an animation; the format is the path's extension (.mp4 or .gif). Returns path."""
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
    raise ValueError(f'{path}: frames must be uint8 (T, H, W, 3), got {frames.dtype} '
                     f'{frames.shape}.')
  root, ext = os.path.splitext(path)
  if ext.lower().lstrip('.') not in FORMATS:
    raise ValueError(f'{path}: animations are written as .gif or .mp4, not {ext!r}.')
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f'{root}.tmp{ext}'
  if ext.lower() == '.gif':
    iio.imwrite(tmp, frames, duration=1000.0 / fps, loop=0)
  else:
    import imageio.v2 as iio2  # pylint: disable=g-import-not-at-top
    # imageio-ffmpeg ships its own ffmpeg binary and starts it with subprocess (fork + immediate
    # exec, no Python in the child), which JAX's fork warning cannot tell from an unsafe fork.
    with warnings.catch_warnings():
      warnings.filterwarnings('ignore', message=r'os\.fork\(\) was called')
      with iio2.get_writer(tmp, fps=fps, codec='libx264', macro_block_size=1,
                           pixelformat='yuv420p', quality=8) as writer:
        for frame in _even(frames):
          writer.append_data(frame)
  os.replace(tmp, path)
  return path


def write_still(path: str, frame) -> str:
  """One frame as a PNG (the report's and README's stills)."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  root, ext = os.path.splitext(path)
  tmp = f'{root}.tmp{ext}'
  iio.imwrite(tmp, np.asarray(frame, np.uint8), extension=ext)
  os.replace(tmp, path)
  return path
