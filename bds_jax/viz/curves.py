"""Training curves of a run as one PNG: a small plot per logged scalar, train and eval.

Read from the run's metrics.jsonl (one JSON object per line: "step" and named scalars; a line
cut short by a crash is skipped, as the trainer itself does on resume). Throughput and
bookkeeping scalars are left out; losses spanning decades get a log axis.
"""

import json
import math
import os

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

SKIP = ('steps_per_sec', 'param_norm', 'lr', 'seconds')
MAX_PANELS = 16


def read_metrics(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """{name: (steps, values)} of every finite scalar in a metrics.jsonl."""
  series: dict[str, list] = {}
  with open(path) as f:
    for line in f:
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        continue  # a line cut short by a crash
      step = row.get('step')
      if not isinstance(step, (int, float)):
        continue
      for k, v in row.items():
        if k != 'step' and isinstance(v, (int, float)) and math.isfinite(v):
          series.setdefault(k, []).append((step, v))
  return {k: (np.array([s for s, _ in v]), np.array([x for _, x in v]))
          for k, v in series.items()}


def plot(metrics_path: str, out_path: str, title: str) -> str | None:
  """Writes the curves PNG; None when the file has nothing to plot."""
  if not os.path.exists(metrics_path):
    return None
  series = {k: v for k, v in read_metrics(metrics_path).items()
            if not any(k.endswith(s) for s in SKIP) and len(v[0]) > 1}
  if not series:
    return None
  names = sorted(series, key=lambda k: (not k.startswith('train/'), k))[:MAX_PANELS]
  cols = min(4, len(names))
  rows = math.ceil(len(names) / cols)
  fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.4 * rows + 0.5), dpi=100,
                           squeeze=False)
  for ax, name in zip(axes.flat, names):
    steps, values = series[name]
    colour = '#1f77b4' if name.startswith('train/') else '#d62728'
    ax.plot(steps, values, color=colour, lw=1.2, marker='.' if len(steps) < 30 else None)
    positive = values[values > 0]
    if len(positive) == len(values) and positive.max() / positive.min() > 100:
      ax.set_yscale('log')
    ax.set_title(name, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
  for ax in axes.flat[len(names):]:
    ax.set_axis_off()
  for ax in axes[-1]:
    ax.set_xlabel('step', fontsize=8)
  fig.suptitle(title, fontsize=11)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
  fig.savefig(out_path + '.tmp.png')
  plt.close(fig)
  os.replace(out_path + '.tmp.png', out_path)
  return out_path
