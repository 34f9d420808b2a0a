"""Scalar logging: TensorBoard event files (tensorboardX, no TensorFlow) and a JSONL file.

Only process 0 writes. On resume, JSONL lines past the restored step (written by the
interrupted run after its last checkpoint) are dropped, so the log matches the training state.
"""

import json
import os

import jax
import numpy as np


class MetricWriter:

  def __init__(self, workdir: str, resume_step: int = 0):
    self.enabled = jax.process_index() == 0
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self._tb = None
    if not self.enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    if os.path.exists(self.path):
      with open(self.path) as f:
        keep = [l for l in f if l.strip() and json.loads(l).get('step', 0) <= resume_step]
      with open(self.path, 'w') as f:
        f.writelines(keep)
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    self._tb = SummaryWriter(logdir=os.path.join(workdir, 'tensorboard'))

  def write_scalars(self, step: int, scalars: dict):
    if not self.enabled:
      return
    clean = {k: float(np.asarray(v)) for k, v in scalars.items()}
    with open(self.path, 'a') as f:
      f.write(json.dumps({'step': int(step), **clean}) + '\n')
    for k, v in clean.items():
      self._tb.add_scalar(k, v, int(step))
    self._tb.flush()

  def close(self):
    if self._tb is not None:
      self._tb.close()


def read_jsonl(path: str) -> list[dict]:
  with open(path) as f:
    return [json.loads(l) for l in f if l.strip()]
