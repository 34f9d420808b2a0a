"""Metric logging: TensorBoard event files (tensorboardX, no TensorFlow) and a JSONL file.

Scalars go to both; images (figure grids) to TensorBoard only, PNG-encoded by tensorboardX.

Only process 0 writes. On resume, JSONL lines past the restored step (written by the
interrupted run after its last checkpoint) are dropped, so the log matches the training state.
The kept lines go to a new file that then replaces the old one, so a crash during the clean-up
loses nothing; a cut-off last line (a kill or a full disk mid-write) is dropped with a warning.
"""

import json
import logging
import os

import jax
import numpy as np

from bds_jax import errors
from bds_jax import run_layout


class MetricWriter:

  def __init__(self, workdir: str, resume_step: int = 0):
    self.enabled = jax.process_index() == 0
    self.path = os.path.join(workdir, run_layout.METRICS_FILE)
    self._tb = None
    if not self.enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    if os.path.exists(self.path):
      keep = [r for r in read_jsonl(self.path) if r.get('step', 0) <= resume_step]
      with open(self.path + '.tmp', 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in keep)
      os.replace(self.path + '.tmp', self.path)
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    self._tb = SummaryWriter(logdir=os.path.join(workdir, run_layout.TENSORBOARD_DIR))

  def write_scalars(self, step: int, scalars: dict):
    if not self.enabled:
      return
    clean = {k: float(np.asarray(v)) for k, v in scalars.items()}
    with open(self.path, 'a') as f:
      f.write(json.dumps({'step': int(step), **clean}) + '\n')
    for k, v in clean.items():
      self._tb.add_scalar(k, v, int(step))
    self._tb.flush()

  def write_images(self, step: int, images: dict):
    """Logs (H, W, 3) uint8 images (e.g. the appearance model's figure grid) to TensorBoard."""
    if not self.enabled:
      return
    for tag, image in images.items():
      image = np.asarray(image)
      if not is_image(image):
        raise ValueError(f'write_images: {tag!r} must be an (H, W, 3) uint8 image, got '
                         f'{image.dtype} {image.shape}.')
      self._tb.add_image(tag, image, int(step), dataformats='HWC')
    self._tb.flush()

  def close(self):
    if self._tb is not None:
      self._tb.close()


def is_image(value) -> bool:
  """Whether an evaluator's value is an image to log (an (H, W, 3) uint8 array), not a scalar."""
  return (isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim == 3
          and value.shape[-1] == 3)


def read_jsonl(path: str) -> list[dict]:
  """The rows of a JSONL file; a cut-off last line is dropped with a warning."""
  with open(path) as f:
    lines = [l for l in f if l.strip()]
  rows = []
  for i, line in enumerate(lines):
    try:
      rows.append(json.loads(line))
    except ValueError as e:
      if i < len(lines) - 1:
        raise errors.InputError(f'{path}, line {i + 1}, is not JSON ({e}); only a cut-off last line '
                         'is expected. Move the file aside to start a new log.') from e
      logging.getLogger(__name__).warning('Dropping the cut-off last line of %s: %r', path,
                                          line[:80])
  return rows
