"""Where synthesize.py's results go: <run>/synthesis/<name>.{mp4,gif,png} plus manifest.json.

The manifest lists every result (what made it, its files, caption and measured numbers), so
the HTML report (`bds_jax.viz.report_page`) can show them without knowing the subcommands.
A result written again under the same name replaces its entry.
"""

import json
import os
import time

from bds_jax import errors
from bds_jax import run_layout
from bds_jax.synthesis.behavior import Figure
from bds_jax.viz import animation
from bds_jax.viz import video_io

DIR = run_layout.SYNTHESIS_DIR  # commands.py's default --out_dir under the run


def read_manifest(out_dir: str) -> list[dict]:
  path = os.path.join(out_dir, run_layout.MANIFEST_FILE)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    try:
      return json.load(f)
    except json.JSONDecodeError as e:
      raise errors.InputError(f'{path} is not valid JSON ({e}); delete it and re-run the '
                              'synthesize.py commands whose results you want listed.') from None


def add_entry(out_dir: str, entry: dict):
  entries = [e for e in read_manifest(out_dir) if e['name'] != entry['name']] + [entry]
  path = os.path.join(out_dir, run_layout.MANIFEST_FILE)
  with open(path + '.tmp', 'w') as f:
    json.dump(entries, f, indent=1)
  os.replace(path + '.tmp', path)


def save_figure(out_dir: str, name: str, command: str, figure: Figure, fps: float,
                fmt: str = 'mp4', still: float = 0.6, **extra) -> dict:
  """Renders and writes a Figure as <name>.<fmt> and a still <name>.png; returns its entry."""
  frames = animation.render(figure.rows, fps, title=figure.title)
  video = video_io.write(os.path.join(out_dir, f'{name}.{fmt}'), frames, fps)
  png = video_io.write_still(os.path.join(out_dir, f'{name}.png'),
                             frames[min(len(frames) - 1, int(still * len(frames)))])
  entry = {'name': name, 'command': command, 'title': figure.title, 'caption': figure.caption,
           'video': os.path.basename(video), 'still': os.path.basename(png), 'fps': fps,
           'frames': int(len(frames)), 'size': [int(frames.shape[2]), int(frames.shape[1])],
           'stats': figure.stats, 'created': time.strftime('%Y-%m-%d %H:%M:%S'), **extra}
  add_entry(out_dir, entry)
  return entry
