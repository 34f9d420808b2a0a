"""Ray intersection with the convex solids a synthetic person is built from (NumPy).

Every `intersect(origin, dirs)` takes one ray origin (3,) and unit directions (N, 3) and
returns the distance to the first surface hit in front of the origin, inf where the ray misses.
Origins are assumed outside the solid (a camera is never inside a person).
"""

import dataclasses

import numpy as np

_CUBE = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T


def _sphere_hit(origin, dirs, centre, radius):
  oc = origin - centre
  b = dirs @ oc
  h = b * b - (oc @ oc - radius * radius)
  with np.errstate(invalid='ignore'):
    t = -b - np.sqrt(h)
  return np.where((h >= 0) & (t > 0), t, np.inf)


@dataclasses.dataclass
class Capsule:
  """Points within `radius` of segment a-b."""
  a: np.ndarray
  b: np.ndarray
  radius: float

  def hull(self) -> np.ndarray:
    """Points (16, 3) whose convex hull contains the capsule: cubes around both ends."""
    return np.concatenate([self.a + self.radius * _CUBE, self.b + self.radius * _CUBE])

  def intersect(self, origin, dirs) -> np.ndarray:
    # The capsule is a cylinder and two end spheres; the first hit of a union of convex
    # solids is the nearest first hit of its parts.
    ba, oa = self.b - self.a, origin - self.a
    baba, baoa = ba @ ba, ba @ oa
    bard, rdoa = dirs @ ba, dirs @ oa
    a = baba - bard * bard
    b = baba * rdoa - baoa * bard
    c = baba * (oa @ oa) - baoa * baoa - self.radius ** 2 * baba
    h = b * b - a * c
    with np.errstate(invalid='ignore', divide='ignore'):
      t = (-b - np.sqrt(h)) / a
    y = baoa + t * bard  # position along the axis, times |ba|
    body = np.where((h >= 0) & (a > 1e-12) & (t > 0) & (y > 0) & (y < baba), t, np.inf)
    return np.minimum(body, np.minimum(_sphere_hit(origin, dirs, self.a, self.radius),
                                       _sphere_hit(origin, dirs, self.b, self.radius)))

  def axial(self, points) -> np.ndarray:
    """Distance (metres) from a along the axis of each point's closest axis point."""
    ba = self.b - self.a
    length = float(np.linalg.norm(ba))
    if length == 0:
      return np.zeros(len(points))
    return np.clip((points - self.a) @ (ba / length), 0.0, length)

  def normal(self, points) -> np.ndarray:
    ba = self.b - self.a
    length = float(np.linalg.norm(ba))
    axis = ba / length if length else ba
    closest = self.a + self.axial(points)[:, None] * axis
    n = points - closest
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)


@dataclasses.dataclass
class Ellipsoid:
  """An ellipsoid with semi-axes radii[k] along the unit columns axes[:, k]."""
  centre: np.ndarray
  axes: np.ndarray
  radii: np.ndarray

  def hull(self) -> np.ndarray:
    """Corners (8, 3) of the oriented box around the ellipsoid."""
    return self.centre + (_CUBE * self.radii) @ self.axes.T

  def local(self, points) -> np.ndarray:
    """Points in the unit-sphere frame: (axes^T (p - centre)) / radii."""
    return ((points - self.centre) @ self.axes) / self.radii

  def intersect(self, origin, dirs) -> np.ndarray:
    o = ((origin - self.centre) @ self.axes) / self.radii
    d = (dirs @ self.axes) / self.radii
    a = np.einsum('ij,ij->i', d, d)
    b = d @ o
    h = b * b - a * (o @ o - 1.0)
    with np.errstate(invalid='ignore'):
      t = (-b - np.sqrt(h)) / a
    return np.where((h >= 0) & (t > 0), t, np.inf)

  def normal(self, points) -> np.ndarray:
    n = (self.local(points) / self.radii) @ self.axes.T
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)


def sphere(centre, radius: float) -> Ellipsoid:
  return Ellipsoid(np.asarray(centre, np.float64), np.eye(3), np.full(3, float(radius)))


def frame(up, side) -> np.ndarray:
  """Right-handed orthonormal columns (forward, left, up) from an up and a leftward vector.

  `side` is made orthogonal to `up`; when it is (nearly) parallel, any perpendicular is used.
  """
  up = np.asarray(up, np.float64)
  up = up / max(np.linalg.norm(up), 1e-12)
  left = side - (side @ up) * up
  if np.linalg.norm(left) < 1e-6:
    left = np.cross(up, [1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.cross(up, [0.0, 1.0, 0.0])
  left = left / np.linalg.norm(left)
  return np.stack([np.cross(left, up), left, up], axis=1)
