"""Pinhole cameras that look at a synthetic person, and projection of world joints to pixels.

Conventions (those of OpenCV and of upstream's `extrinsics_univ`, reference spec §1.8):
x_cam = R·x_world + t, camera x right, y down, z forward; u = f_x·x/z + c_x, v = f_y·y/z + c_y.
Pixel (row i, column j) has its centre at (u, v) = (j, i). World: metres, z up.

Cameras that look at a person aim at the centre of the joints' bounding box (over all frames
of a sequence, so the camera stays still while they move) from `fit_distance`: far enough that
a sphere around every joint, plus a margin for hands, feet and the head, fills at most the
field of view, whatever the azimuth and elevation. A standing person then fills about 80% of
the image height; a person stretched out (a lunge, a kick) is seen from further away.
`default_camera` uses a fixed azimuth and elevation, `camera_from_seed` draws them.
"""

import dataclasses
import numbers

import numpy as np

from bds_jax import skeleton
from bds_jax.imaging import keypoints as keypoints_lib

DEFAULT_FOV_DEG = 30.0  # vertical field of view
DEFAULT_ELEVATION_DEG = 10.0
DEFAULT_AZIMUTH_DEG = -70.0  # camera position around the target, from +x counter-clockwise
MIN_DISTANCE = 3.0  # metres: closer views distort a small (e.g. crouching) person
BODY_MARGIN = 0.15  # metres beyond the joints: hands, toes, the top of the head
# Elevation range of camera_from_seed (degrees above the horizontal).
ELEVATION_RANGE_DEG = (0.0, 20.0)


def _vector(value, n: int, what: str) -> np.ndarray:
  value = np.asarray(value, np.float64)
  if value.shape != (n,) or not np.all(np.isfinite(value)):
    raise ValueError(f'{what}={value!r}: expected {n} finite numbers.')
  return value


def _number(value, what: str, positive: bool = False) -> float:
  if not isinstance(value, numbers.Real) or not np.isfinite(value) or (positive and value <= 0):
    raise ValueError(f'{what}={value!r}: expected a finite{" positive" if positive else ""} '
                     'number.')
  return float(value)


@dataclasses.dataclass(frozen=True, eq=False)
class Camera:
  """A pinhole camera for an image of height × width pixels.

  Attributes:
    intrinsics: (3, 3) K = [[f_x, 0, c_x], [0, f_y, c_y], [0, 0, 1]] in pixels.
    rotation: (3, 3) world-to-camera rotation R.
    translation: (3,) t, so x_cam = R·x_world + t (metres).
    height, width: image size in pixels.
  """
  intrinsics: np.ndarray
  rotation: np.ndarray
  translation: np.ndarray
  height: int
  width: int

  @property
  def extrinsics(self) -> np.ndarray:
    """(3, 4) [R | t]."""
    return np.concatenate([self.rotation, self.translation[:, None]], axis=1)

  @property
  def centre(self) -> np.ndarray:
    """The camera's position in the world (metres)."""
    return -self.rotation.T @ self.translation

  @classmethod
  def from_arrays(cls, intrinsics, extrinsics, size) -> 'Camera':
    """A camera from (3, 3) intrinsics, (3, 4) extrinsics [R | t] and an image size."""
    height, width = keypoints_lib.image_size(size, 'camera size')
    k = np.asarray(intrinsics, np.float64)
    e = np.asarray(extrinsics, np.float64)
    if k.shape != (3, 3) or e.shape != (3, 4):
      raise ValueError(f'camera: expected (3, 3) intrinsics and (3, 4) extrinsics, got '
                       f'{k.shape} and {e.shape}.')
    if not (np.all(np.isfinite(k)) and np.all(np.isfinite(e))):
      raise ValueError('camera: intrinsics or extrinsics contain NaN or inf.')
    if k[0, 0] <= 0 or k[1, 1] <= 0 or np.any(k[2] != (0.0, 0.0, 1.0)):
      raise ValueError(f'camera: intrinsics must have positive focal lengths and last row '
                       f'(0, 0, 1), got {k.tolist()}.')
    return cls(k, e[:, :3].copy(), e[:, 3].copy(), height, width)

  def rounded(self) -> 'Camera':
    """This camera with every parameter rounded to float32, as a dataset stores it.

    Rendering with the rounded camera makes stored parameters reproduce stored images exactly.
    """
    return Camera.from_arrays(self.intrinsics.astype(np.float32),
                              self.extrinsics.astype(np.float32), (self.height, self.width))

  def resized(self, size) -> 'Camera':
    """The same view for an image of another size (each axis scaled on its own)."""
    height, width = keypoints_lib.image_size(size)
    if (height, width) == (self.height, self.width):
      return self  # bit for bit: a stored camera must redraw its stored images exactly
    sx, sy = width / self.width, height / self.height
    k = self.intrinsics.copy()
    k[0] *= sx
    k[1] *= sy
    # Pixel centres sit at integers, so the edge (-0.5) scales, not 0.
    k[0, 2] = (self.intrinsics[0, 2] + 0.5) * sx - 0.5
    k[1, 2] = (self.intrinsics[1, 2] + 0.5) * sy - 0.5
    return Camera(k, self.rotation, self.translation, height, width)


def look_at(eye, target, size=128, fov_deg: float = DEFAULT_FOV_DEG) -> Camera:
  """A camera at `eye` aimed at `target` (world metres), image upright (world z up)."""
  eye, target = _vector(eye, 3, 'eye'), _vector(target, 3, 'target')
  height, width = keypoints_lib.image_size(size)
  fov = _number(fov_deg, 'fov_deg', positive=True)
  if fov >= 170:
    raise ValueError(f'fov_deg={fov_deg!r}: expected a vertical field of view below 170.')
  forward = target - eye
  if np.linalg.norm(forward) < 1e-6:
    raise ValueError(f'eye and target coincide ({eye.tolist()}); they must differ.')
  forward /= np.linalg.norm(forward)
  right = np.cross(forward, [0.0, 0.0, 1.0])
  if np.linalg.norm(right) < 1e-6:
    raise ValueError('look_at: the camera looks straight up or down; choose an eye that is '
                     'not directly above or below the target.')
  right /= np.linalg.norm(right)
  down = np.cross(forward, right)
  rotation = np.stack([right, down, forward])
  focal = 0.5 * height / np.tan(np.radians(fov) / 2.0)
  k = np.array([[focal, 0.0, (width - 1) / 2.0], [0.0, focal, (height - 1) / 2.0],
                [0.0, 0.0, 1.0]])
  return Camera(k, rotation, -rotation @ eye, height, width)


def orbit_camera(target, azimuth_deg: float, elevation_deg: float, distance: float,
                 size=128, fov_deg: float = DEFAULT_FOV_DEG) -> Camera:
  """A camera `distance` metres from `target`, at an azimuth (from +x, counter-clockwise
  about +z) and an elevation above the horizontal, looking at `target`."""
  target = _vector(target, 3, 'target')
  az = np.radians(_number(azimuth_deg, 'azimuth_deg'))
  el = np.radians(_number(elevation_deg, 'elevation_deg'))
  if abs(el) >= np.radians(89.0):
    raise ValueError(f'elevation_deg={elevation_deg!r} must lie within ±89.')
  distance = _number(distance, 'distance', positive=True)
  eye = target + distance * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az),
                                      np.sin(el)])
  return look_at(eye, target, size, fov_deg)


def _joints(poses) -> np.ndarray:
  return skeleton.check_poses(poses).reshape(-1, 3).astype(np.float64)


def person_target(poses) -> np.ndarray:
  """Aim point (3,) for a pose (17, 3) or sequence (T, 17, 3): its joints' bounding-box centre."""
  joints = _joints(poses)
  return 0.5 * (joints.min(axis=0) + joints.max(axis=0))


def fit_distance(poses, fov_deg: float = DEFAULT_FOV_DEG) -> float:
  """Distance from person_target at which the person fits the view from any direction."""
  joints = _joints(poses)
  radius = 0.5 * float(np.linalg.norm(joints.max(axis=0) - joints.min(axis=0))) + BODY_MARGIN
  half_fov = np.radians(_number(fov_deg, 'fov_deg', positive=True)) / 2.0
  return max(MIN_DISTANCE, radius / np.sin(half_fov))


def default_camera(poses, size=128) -> Camera:
  """The default view of a person (pose or sequence) anywhere in the room."""
  return orbit_camera(person_target(poses), DEFAULT_AZIMUTH_DEG, DEFAULT_ELEVATION_DEG,
                      fit_distance(poses), size)


def camera_from_seed(seed: int, poses, size=128) -> Camera:
  """A camera per example: azimuth uniform over the circle, elevation uniform in
  ELEVATION_RANGE_DEG, aimed at the person (pose or sequence) from fit_distance."""
  if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
    raise ValueError(f'seed={seed!r}: expected an int >= 0.')
  rng = np.random.default_rng(int(seed))
  azimuth = rng.uniform(-180.0, 180.0)
  elevation = rng.uniform(*ELEVATION_RANGE_DEG)
  return orbit_camera(person_target(poses), azimuth, elevation, fit_distance(poses), size)


def to_camera_frame(points, camera: Camera) -> np.ndarray:
  """World points (..., 3) in camera coordinates."""
  return np.asarray(points, np.float64) @ camera.rotation.T + camera.translation


def project(poses, camera: Camera) -> np.ndarray:
  """Pixel keypoints (..., 17, 2) float64 of world joints (..., 17, 3).

  Raises a ValueError when a joint is not in front of the camera.
  """
  if not isinstance(camera, Camera):
    raise ValueError(f'camera: expected a bds_jax.procedural.camera.Camera, got '
                     f'{type(camera).__name__}.')
  poses = skeleton.check_poses(poses)
  xc = to_camera_frame(poses, camera)
  if np.any(xc[..., 2] <= 1e-6):
    raise ValueError(f'project: {int(np.sum(xc[..., 2] <= 1e-6))} joints lie behind the '
                     f'camera at {camera.centre.round(3).tolist()}; aim it at the person.')
  uvw = xc @ camera.intrinsics.T
  return uvw[..., :2] / uvw[..., 2:]
