"""Image grids: rows of equally sized images with a thin white border (PNG: video_io).

Used by the appearance model's figure (appearance | stickman | reconstruction | target pose
| transfer); images in [-1, 1] (the model's range) or uint8.
"""

import numpy as np


def to_uint8(image) -> np.ndarray:
  """[-1, 1] float -> uint8 (clipped); uint8 passes through."""
  image = np.asarray(image)
  if image.dtype == np.uint8:
    return image
  return np.round((np.clip(image, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def grid(rows, border: int = 2) -> np.ndarray:
  """rows: a list of rows, each a list of (H, W, 3) images of one size -> one uint8 image."""
  if not rows or not all(rows) or len({len(r) for r in rows}) != 1:
    raise ValueError('grid needs a non-empty list of rows of equally many images.')
  h, w = np.asarray(rows[0][0]).shape[:2]
  n_rows, n_cols = len(rows), len(rows[0])
  out = np.full((n_rows * (h + border) + border, n_cols * (w + border) + border, 3), 255,
                np.uint8)
  for i, row in enumerate(rows):
    for j, image in enumerate(row):
      image = to_uint8(image)
      if image.shape != (h, w, 3):
        raise ValueError(f'grid image ({i}, {j}) has shape {image.shape}, expected {(h, w, 3)}.')
      y, x = border + i * (h + border), border + j * (w + border)
      out[y:y + h, x:x + w] = image
  return out
