"""Pixel masks of thick line segments and filled polygons (NumPy, no OpenCV).

Pixel (row i, column j) has its centre at (x = j, y = i); a pixel belongs to a shape when its
centre does. Each function touches only the shape's bounding box, so drawing stays cheap.
"""

import numpy as np


def _box(xs, ys, pad: float, height: int, width: int):
  """Row and column ranges covering [min - pad, max + pad], clipped to the image."""
  r0 = max(int(np.floor(min(ys) - pad)), 0)
  r1 = min(int(np.ceil(max(ys) + pad)) + 1, height)
  c0 = max(int(np.floor(min(xs) - pad)), 0)
  c1 = min(int(np.ceil(max(xs) + pad)) + 1, width)
  return r0, r1, c0, c1


def segment_mask(a, b, width: float, height: int, image_width: int):
  """Pixels within width / 2 of segment a-b (x, y), as (rows slice, cols slice, bool mask).

  A width of 1 gives a connected one-pixel line (every pixel centre within 0.5 px).
  """
  half = max(width / 2.0, 0.5)
  (ax, ay), (bx, by) = a, b
  r0, r1, c0, c1 = _box((ax, bx), (ay, by), half, height, image_width)
  if r0 >= r1 or c0 >= c1:
    return slice(0, 0), slice(0, 0), np.zeros((0, 0), bool)
  y, x = np.mgrid[r0:r1, c0:c1].astype(np.float64)
  dx, dy = bx - ax, by - ay
  length2 = dx * dx + dy * dy
  s = np.zeros_like(x) if length2 == 0 else np.clip(((x - ax) * dx + (y - ay) * dy) / length2,
                                                     0.0, 1.0)
  dist2 = (x - ax - s * dx) ** 2 + (y - ay - s * dy) ** 2
  return slice(r0, r1), slice(c0, c1), dist2 <= half * half + 1e-9


def polygon_mask(points, height: int, width: int):
  """Pixels inside polygon `points` (N, 2) (even-odd rule) or on its edges.

  Returns (rows slice, cols slice, bool mask) like segment_mask.
  """
  points = np.asarray(points, np.float64)
  r0, r1, c0, c1 = _box(points[:, 0], points[:, 1], 0.5, height, width)
  if r0 >= r1 or c0 >= c1:
    return slice(0, 0), slice(0, 0), np.zeros((0, 0), bool)
  y, x = np.mgrid[r0:r1, c0:c1].astype(np.float64)
  inside = np.zeros(x.shape, bool)
  for (xa, ya), (xb, yb) in zip(points, np.roll(points, -1, axis=0)):
    # Crossing test of a ray towards +x; the half-open rule counts shared vertices once.
    crosses = (ya > y) != (yb > y)
    with np.errstate(divide='ignore', invalid='ignore'):
      x_cross = xa + (y - ya) * (xb - xa) / (yb - ya)
    inside ^= crosses & (x < x_cross)
  rows, cols = slice(r0, r1), slice(c0, c1)
  for a, b in zip(points, np.roll(points, -1, axis=0)):  # edges, like a filled outline
    er, ec, edge = segment_mask(a, b, 1.0, height, width)
    inside[er.start - r0:er.stop - r0, ec.start - c0:ec.stop - c0] |= edge
  return rows, cols, inside
