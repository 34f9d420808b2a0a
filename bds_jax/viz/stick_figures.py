"""3D stick-figure animations of pose sequences (matplotlib + imageio).

A figure is a grid of panels (rows x columns), each an animated (frames, 17, 3) sequence in
metres. Every panel uses the same 2 m cube, centred on its own sequence, so scales compare.
"""

import os
from typing import Sequence
import warnings

import imageio.v3 as iio
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from bds_jax import skeleton  # pylint: disable=g-import-not-at-top,wrong-import-position

COLORS = {'left': '#1f77b4', 'right': '#d62728', 'center': '#333333'}
HALF_EXTENT = 1.0  # metres around each panel's centre


def render_frames(panels: Sequence[Sequence[tuple[str, np.ndarray]]],
                  panel_size: float = 2.4, dpi: int = 80, elev: float = 15.0,
                  azim: float = -70.0) -> np.ndarray:
  """Renders rows of (title, (T, 17, 3)) panels; returns uint8 frames (T_max, H, W, 3).

  Shorter sequences hold their last frame.
  """
  rows, cols = len(panels), max(len(r) for r in panels)
  fig = plt.figure(figsize=(panel_size * cols, panel_size * rows), dpi=dpi)
  artists = []
  num_frames = 0
  for r, row in enumerate(panels):
    for c, (title, seq) in enumerate(row):
      seq = skeleton.check_poses(seq, f'panel {title!r}')
      num_frames = max(num_frames, len(seq))
      ax = fig.add_subplot(rows, cols, r * cols + c + 1, projection='3d')
      centre = seq[:, 0].mean(axis=0)
      ax.set_xlim(centre[0] - HALF_EXTENT, centre[0] + HALF_EXTENT)
      ax.set_ylim(centre[1] - HALF_EXTENT, centre[1] + HALF_EXTENT)
      ax.set_zlim(0.0, 2 * HALF_EXTENT)
      ax.set_box_aspect((1, 1, 1))
      ax.view_init(elev=elev, azim=azim)
      ax.set_xticklabels([])
      ax.set_yticklabels([])
      ax.set_zticklabels([])
      ax.set_title(title, fontsize=9)
      lines = [ax.plot([], [], [], color=COLORS[skeleton.bone_side(p, ch)], lw=2)[0]
               for p, ch in skeleton.BONES]
      artists.append((seq, lines))
  fig.tight_layout()
  frames = []
  for t in range(num_frames):
    for seq, lines in artists:
      pose = seq[min(t, len(seq) - 1)]
      for line, (p, ch) in zip(lines, skeleton.BONES):
        line.set_data_3d(pose[[p, ch], 0], pose[[p, ch], 1], pose[[p, ch], 2])
    fig.canvas.draw()
    frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
  plt.close(fig)
  return np.stack(frames)


def save_animation(path: str, frames: np.ndarray, fps: float):
  """Writes frames as a GIF (or MP4 when the path ends in .mp4), atomically."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  root, ext = os.path.splitext(path)
  tmp = f'{root}.tmp{ext}'
  if ext.lower() == '.gif':
    iio.imwrite(tmp, frames, duration=1000.0 / fps, loop=0)
  elif ext.lower() == '.mp4':
    import imageio.v2 as iio2  # pylint: disable=g-import-not-at-top
    # imageio-ffmpeg ships its own ffmpeg binary; even frame sizes keep libx264 happy. It starts
    # ffmpeg with subprocess (fork + immediate exec, no Python in the child), which JAX's
    # fork warning cannot tell apart from an unsafe fork.
    h, w = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
    with warnings.catch_warnings():
      warnings.filterwarnings('ignore', message=r'os\.fork\(\) was called')
      with iio2.get_writer(tmp, fps=fps, codec='libx264', macro_block_size=1) as writer:
        for frame in frames:
          writer.append_data(frame[:h, :w])
  else:
    raise ValueError(f'{path}: animations are written as .gif or .mp4, not {ext!r}.')
  os.replace(tmp, path)
