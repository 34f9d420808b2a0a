"""A still of K predicted futures of one observation (synthesize.py predict).

Left: the last observed pose (black) and every future's final pose, overlaid in one 3D view
with the side colours of `bds_jax.viz.animation` at low opacity, so the spread of the endings
reads at a glance; the true ending, when known, in green. Right: the same from above: each
future's pelvis path over the floor, its end as a dot, the observed path in black.
"""

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from bds_jax import skeleton  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.viz import animation  # pylint: disable=g-import-not-at-top,wrong-import-position

TRUTH_COLOR = '#2ca02c'


def _bones(ax, pose, color=None, lw=1.2, alpha=1.0, zorder=2):
  for p, c in skeleton.BONES:
    ax.plot(pose[[p, c], 0], pose[[p, c], 1], pose[[p, c], 2], lw=lw, alpha=alpha,
            color=color or skeleton.SIDE_COLORS[skeleton.bone_side(p, c)],
            solid_capstyle='round', zorder=zorder)


def draw(path: str, observed, futures, title: str, truth=None, dpi: int = 110) -> str:
  """Writes the still to `path` (PNG).

  observed: (F, 17, 3) metres, ending with the pose every future starts from;
  futures: (K, T, 17, 3) metres (each starting with that pose); truth: (T', 17, 3) or None.
  """
  observed, futures = np.asarray(observed), np.asarray(futures)
  ends = futures[:, -1]
  everything = np.concatenate([observed, futures.reshape(-1, *futures.shape[-2:])] +
                              ([np.asarray(truth)] if truth is not None else []))
  centre, half, floor = animation._limits(everything)  # pylint: disable=protected-access
  fig = plt.figure(figsize=(9.6, 4.6), dpi=dpi, facecolor=animation.BACKGROUND)
  ax = fig.add_subplot(1, 2, 1, projection='3d')
  ax.set_xlim(centre[0] - half, centre[0] + half)
  ax.set_ylim(centre[1] - half, centre[1] + half)
  ax.set_zlim(floor, floor + 2 * half)
  ax.set_box_aspect((1, 1, 1), zoom=1.3)
  ax.view_init(elev=12.0, azim=-65.0)
  ax.set_axis_off()
  animation._floor(ax, centre, half, floor)  # pylint: disable=protected-access
  alpha = float(np.clip(6.0 / len(ends), 0.15, 0.6))
  for end in ends:
    _bones(ax, end, lw=1.0, alpha=alpha)
  _bones(ax, observed[-1], color='#000000', lw=2.2, zorder=3)
  if truth is not None:
    _bones(ax, np.asarray(truth)[-1], color=TRUTH_COLOR, lw=2.0, zorder=3)
  ax.set_title(f'{len(ends)} final poses; black: the last observed'
               + ('; green: the true end' if truth is not None else ''), fontsize=9)

  top = fig.add_subplot(1, 2, 2)
  for f in futures:
    top.plot(f[:, 0, 0], f[:, 0, 1], color='#1f77b4', lw=0.8, alpha=max(alpha, 0.25))
  top.scatter(ends[:, 0, 0], ends[:, 0, 1], s=10, color='#1f77b4', zorder=3,
              label=f'{len(ends)} futures: pelvis path and end')
  top.plot(observed[:, 0, 0], observed[:, 0, 1], color='#000000', lw=2.2, label='observed')
  if truth is not None:
    truth = np.asarray(truth)
    top.plot(truth[:, 0, 0], truth[:, 0, 1], color=TRUTH_COLOR, lw=2.0, label='true future')
  # From above, only the paths matter: a tighter square than the 3D view's 2 m cube.
  xy = everything[:, 0, :2]
  mid, span = (xy.min(0) + xy.max(0)) / 2, max(0.5, float((xy.max(0) - xy.min(0)).max()) / 2 + 0.15)
  top.set_xlim(mid[0] - span, mid[0] + span)
  top.set_ylim(mid[1] - span, mid[1] + span)
  top.set_aspect('equal')
  top.grid(color='#e5e5e5', lw=0.6)
  top.set_xlabel('x (m)')
  top.set_ylabel('y (m)')
  top.set_title('pelvis paths from above', fontsize=9)
  top.legend(fontsize=8, loc='upper right', frameon=False)
  fig.suptitle(title, fontsize=11)
  fig.tight_layout()
  fig.savefig(path, facecolor=animation.BACKGROUND)
  plt.close(fig)
  return path
