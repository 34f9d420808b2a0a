"""Animated figures: a grid of panels, each a 3D pose clip or an RGB image clip, as frames.

Every figure of the project (training samples, re-enactments, synthesize.py's transfer grids,
samples, interpolations, neighbours and RGB videos) is made here, so they look alike:

  * 3D panels share one camera (elevation, azimuth); each panel's limits are fixed for its
    whole clip (a cube around the clip's ground track, at least 2 m wide), so motion reads as
    motion, not as a moving camera, and sizes compare across panels;
  * a floor grid at the clip's ground height, the root's (pelvis) ground track over the clip
    as a dotted line and its current position as a shadow;
  * bones coloured by side as `skeleton.SIDE_COLORS` (left blue, right red), like the HTML
    report's legend;
  * a title per panel, a figure title, and a frame counter with the time at the data's frame
    rate (`fps`).

The matplotlib figure is drawn once; each frame restores the static background and redraws only
the moving artists (blitting), which is what makes a 4-panel 51-frame clip render in about a
second instead of re-creating or fully redrawing the figure per frame.
"""

import dataclasses
from typing import Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from bds_jax import skeleton  # pylint: disable=g-import-not-at-top,wrong-import-position

MIN_HALF_EXTENT = 1.0   # metres: a panel shows at least a 2 m cube
MARGIN = 0.35           # metres beyond the clip's ground track
FLOOR_STEP = 0.5        # metres between floor grid lines
ROOT = 0                # the pelvis
BACKGROUND = '#ffffff'
OBSERVED_COLOR = '#8c8c8c'  # bones of observed frames (Panel.observed)


@dataclasses.dataclass
class Panel:
  """One cell of a figure.

  Attributes:
    title: shown above the panel.
    poses: (T, 17, 3) metres, z up (a 3D panel), or
    images: (T, H, W, 3) or (H, W, 3) uint8 / [-1, 1] float (an image panel).
    observed: pose panels: the first `observed` frames are drawn in grey (the observation a
      prediction continues), the rest in the side colours.
    Shorter clips hold their last frame; a single image or pose is a still.
  """
  title: str = ''
  poses: np.ndarray | None = None
  images: np.ndarray | None = None
  observed: int = 0

  def __post_init__(self):
    if (self.poses is None) == (self.images is None):
      raise ValueError(f'Panel {self.title!r}: give poses or images (exactly one).')
    if self.poses is not None:
      poses = skeleton.check_poses(self.poses, f'panel {self.title!r}')
      self.poses = poses[None] if poses.ndim == 2 else poses
      if self.poses.ndim != 3:
        raise ValueError(f'panel {self.title!r}: poses must be (T, 17, 3), got {poses.shape}.')
    else:
      images = np.asarray(self.images)
      if images.ndim == 3:
        images = images[None]
      if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f'panel {self.title!r}: images must be (T, H, W, 3), got '
                         f'{np.asarray(self.images).shape}.')
      if images.dtype != np.uint8:
        images = np.round((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
      self.images = images

  def __len__(self) -> int:
    return len(self.poses if self.poses is not None else self.images)


def _limits(poses: np.ndarray):
  """(centre xy, half extent, floor z) fixed for a whole clip."""
  xy = poses[..., :2].reshape(-1, 2)
  lo, hi = xy.min(0), xy.max(0)
  centre = (lo + hi) / 2
  half = max(MIN_HALF_EXTENT, float((hi - lo).max()) / 2 + MARGIN)
  floor = min(0.0, float(poses[..., 2].min()))  # data with z = 0 on the floor keep it there
  return centre, half, floor


def _floor(ax, centre, half, floor):
  lines = np.arange(np.floor((centre - half) / FLOOR_STEP).min(),
                    np.ceil((centre + half) / FLOOR_STEP).max() + 1) * FLOOR_STEP
  for v in lines:
    if centre[0] - half <= v <= centre[0] + half:
      ax.plot([v, v], [centre[1] - half, centre[1] + half], [floor, floor], color='#d9d9d9',
              lw=0.6, zorder=0)
    if centre[1] - half <= v <= centre[1] + half:
      ax.plot([centre[0] - half, centre[0] + half], [v, v], [floor, floor], color='#d9d9d9',
              lw=0.6, zorder=0)


class _PosePanel:
  def __init__(self, fig, spec, panel: Panel, elev: float, azim: float, track: bool):
    self.poses = panel.poses
    self.observed = panel.observed
    ax = fig.add_subplot(spec, projection='3d')
    centre, half, floor = _limits(self.poses)
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_zlim(floor, floor + 2 * half)
    ax.set_box_aspect((1, 1, 1), zoom=1.45)  # matplotlib pads 3D axes generously
    ax.view_init(elev=elev, azim=azim)
    ax.set_axis_off()
    ax.set_title(panel.title, fontsize=10, pad=0)
    _floor(ax, centre, half, floor)
    self.floor = floor
    if track and len(self.poses) > 1:
      root = self.poses[:, ROOT]
      ax.plot(root[:, 0], root[:, 1], np.full(len(root), floor), color='#9e9e9e', lw=1.0,
              ls=':', zorder=1)
    self.shadow = ax.plot([], [], [], 'o', color='#555555', alpha=0.35, ms=9, mec='none',
                          animated=True)[0]
    self.bones = [ax.plot([], [], [], color=skeleton.SIDE_COLORS[skeleton.bone_side(p, c)],
                          lw=2.4, solid_capstyle='round', animated=True)[0]
                  for p, c in skeleton.BONES]
    self.ax = ax

  def draw(self, t: int):
    pose = self.poses[min(t, len(self.poses) - 1)]
    self.shadow.set_data_3d([pose[ROOT, 0]], [pose[ROOT, 1]], [self.floor])
    self.ax.draw_artist(self.shadow)
    for line, (p, c) in zip(self.bones, skeleton.BONES):
      line.set_data_3d(pose[[p, c], 0], pose[[p, c], 1], pose[[p, c], 2])
      if self.observed:
        line.set_color(OBSERVED_COLOR if t < self.observed
                       else skeleton.SIDE_COLORS[skeleton.bone_side(p, c)])
      self.ax.draw_artist(line)


class _ImagePanel:
  def __init__(self, fig, spec, panel: Panel):
    self.images = panel.images
    ax = fig.add_subplot(spec)
    ax.set_axis_off()
    ax.set_title(panel.title, fontsize=10, pad=3)
    self.image = ax.imshow(self.images[0], animated=True, interpolation='nearest')
    self.ax = ax

  def draw(self, t: int):
    self.image.set_data(self.images[min(t, len(self.images) - 1)])
    self.ax.draw_artist(self.image)


def render(rows: Sequence[Sequence[Panel | None]], fps: float, title: str = '',
           panel_inches: float = 2.6, dpi: int = 100, elev: float = 12.0, azim: float = -65.0,
           counter: bool = True, track: bool = True, blit: bool = True) -> np.ndarray:
  """Renders a grid of panels (None: an empty cell) to uint8 frames (T, H, W, 3).

  T is the longest clip; `fps` is the data's frame rate, shown by the frame counter.
  blit=False redraws the whole figure for every frame (the same pixels, slower; for
  benchmarks/figures.py).
  """
  if not rows or not any(p is not None for r in rows for p in r):
    raise ValueError('render needs at least one panel.')
  n_rows, n_cols = len(rows), max(len(r) for r in rows)
  top = 0.6 if title else 0.0
  bottom = 0.25 if counter else 0.0
  fig = plt.figure(figsize=(panel_inches * n_cols, panel_inches * n_rows + top + bottom),
                   dpi=dpi, facecolor=BACKGROUND)
  height = panel_inches * n_rows + top + bottom
  grid = fig.add_gridspec(n_rows, n_cols, left=0.01, right=0.99, wspace=0.04, hspace=0.12,
                          top=1 - top / height, bottom=bottom / height)
  panels = []
  for r, row in enumerate(rows):
    for c, panel in enumerate(row):
      if panel is None:
        continue
      panels.append(_PosePanel(fig, grid[r, c], panel, elev, azim, track)
                    if panel.poses is not None else _ImagePanel(fig, grid[r, c], panel))
  if title:
    fig.suptitle(title, fontsize=12, y=1 - 0.1 / height, va='top')
  num_frames = max(len(p.poses if isinstance(p, _PosePanel) else p.images) for p in panels)
  text = fig.text(0.99, 0.08 / height, '', ha='right', va='bottom', fontsize=9,
                  color='#444444', family='monospace', animated=True) if counter else None
  fig.canvas.draw()
  background = fig.canvas.copy_from_bbox(fig.bbox)
  frames = []
  for t in range(num_frames):
    if blit:
      fig.canvas.restore_region(background)
    else:
      fig.canvas.draw()
    for panel in panels:
      panel.draw(t)
    if text is not None:
      text.set_text(f'frame {t + 1:3d}/{num_frames}   {t / fps:5.2f} s @ {fps:g} fps')
      fig.draw_artist(text)
    frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
  plt.close(fig)
  return np.stack(frames)
