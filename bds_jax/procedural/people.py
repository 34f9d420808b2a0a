"""RGB images of the synthetic subjects in any pose: the ground truth for appearance transfer.

`render_person(subject, pose, camera)` ray-casts the subject's clothed body (body.py, with the
look of appearance.py) through a pinhole camera (camera.py). Each pixel takes the nearest
surface of any body part (exact occlusion), shaded with a Lambert key light fixed in the world,
a fill light from the camera and an ambient term, over a floor with faint 0.5 m tiles, a soft
contact shadow and a plain wall. Pixels average supersample² rays (anti-aliasing).

Everything is a deterministic NumPy function of (subject, pose, camera, size, supersample,
outfit_seed):
a dataset stores the pose and the (float32-rounded) camera, and `render_person` redraws its
image bit for bit. This is the true image of subject s in any pose, e.g. the pose a model
re-enacts, against which appearance transfer is scored.
"""

import functools
import numbers

import numpy as np

from bds_jax import skeleton
from bds_jax.procedural import appearance as appearance_lib
from bds_jax.procedural import body
from bds_jax.procedural import camera as camera_lib
from bds_jax.procedural.camera import project  # re-exported: keypoints of a rendering

__all__ = ['project', 'render_person', 'render_sequence']

_KEY_LIGHT = np.array([0.35, -0.45, 0.82]) / np.linalg.norm([0.35, -0.45, 0.82])
_AMBIENT, _KEY, _FILL = 0.32, 0.58, 0.28
_FLOOR = np.array([0.80, 0.78, 0.74])
_WALL = np.array([0.86, 0.88, 0.90])
_TILE = 0.5  # metres
_NEAR = 0.05  # metres: solids closer to the camera are tested against every pixel
# Contact shadow blobs: joint, standard deviation (m), darkening; zero beyond 3 deviations.
_SHADOWS = ((body.PELVIS, 0.22, 0.3), (body.L_FOOT, 0.11, 0.3), (body.R_FOOT, 0.11, 0.3))
_SQUARE = np.array([[-1, -1, 0], [-1, 1, 0], [1, -1, 0], [1, 1, 0]])  # a shadow's corners


def _camera_key(camera):
  return (camera.intrinsics.tobytes(), camera.rotation.tobytes(),
          camera.translation.tobytes(), camera.height, camera.width)


@functools.lru_cache(maxsize=4)  # ~5 MB each at 128 px with 2x2 supersampling
def _rays_and_room(key):
  """Per pixel: unit ray direction (H, W, 3), floor hit x, y (H, W, 2), whether the ray hits
  the floor (H, W, 1) and the empty room's colour (H, W, 3). Read-only arrays.

  Cached per camera: consecutive frames of a sequence share the camera.
  """
  k, r, t = (np.frombuffer(b, np.float64).reshape(s) for b, s in zip(key[:3],
                                                                     ((3, 3), (3, 3), (3,))))
  height, width = key[3], key[4]
  v, u = np.mgrid[0:height, 0:width].astype(np.float64)
  cam = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], -1)
  dirs = cam.reshape(-1, 3) @ r  # R^T d for each row d
  dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
  origin = -r.T @ t
  down = dirs[:, 2] < -1e-9
  with np.errstate(divide='ignore', invalid='ignore'):
    dist = np.where(down, -origin[2] / dirs[:, 2], np.inf)
  floor_xy = origin[:2] + np.where(down, dist, 0.0)[:, None] * dirs[:, :2]
  # Tile lines at least about a pixel wide, fading with distance so they never alias.
  line_half = np.maximum(0.008, 0.7 * dist / k[1, 1])
  offset = np.abs((floor_xy + 0.5 * _TILE) % _TILE - 0.5 * _TILE)
  on_line = np.any(offset < line_half[:, None], axis=-1)
  floor = _FLOOR * (1.0 - 0.12 * (on_line * np.exp(-dist / 8.0)))[:, None]
  wall = _WALL * (1.0 - 0.12 * np.clip(dirs[:, 2:3], 0.0, 1.0))
  fog = np.where(down, 1.0 - np.exp(-np.maximum(dist - 5.0, 0.0) / 10.0), 1.0)[:, None]
  room = floor * (1.0 - fog) + wall * fog
  out = tuple(a.reshape(height, width, -1) for a in (dirs, floor_xy, down.astype(np.float64),
                                                      room))
  for array in out:
    array.setflags(write=False)
  return out


def _contact_shadow(pose, floor_xy, pixels):
  """Darkening factor of a soft shadow under the pelvis and each foot, at `pixels` (indices
  into floor_xy, all on the floor)."""
  shade = np.zeros(len(pixels))
  xy = floor_xy[pixels]
  for joint, sigma, strength in _SHADOWS:
    dx, dy = xy[:, 0] - pose[joint, 0], xy[:, 1] - pose[joint, 1]
    d2 = dx * dx + dy * dy
    fade = strength * np.exp(-max(float(pose[joint, 2]), 0.0) / 1.5)
    blob = np.where(d2 < (3.0 * sigma) ** 2, np.exp(-d2 / (2.0 * sigma ** 2)), 0.0)
    shade = np.maximum(shade, fade * blob)
  return 1.0 - shade


def _box(points, camera):
  """Pixel rectangle (r0, r1, c0, c1) holding the image of the convex hull of `points`,
  clipped to the image; the whole image when it comes too near the camera. Empty when
  r0 >= r1 or c0 >= c1."""
  xc = camera_lib.to_camera_frame(points, camera)
  if np.any(xc[:, 2] < _NEAR):
    return 0, camera.height, 0, camera.width
  uv = (xc @ camera.intrinsics.T)[:, :2] / xc[:, 2:]
  c0, r0 = np.maximum(np.floor(uv.min(axis=0)).astype(int), 0)
  c1, r1 = np.ceil(uv.max(axis=0)).astype(int) + 1
  return int(r0), min(int(r1), camera.height), int(c0), min(int(c1), camera.width)


def _pool(x, factor: int):
  """Mean over factor × factor blocks of (H, W, C)."""
  total = sum(x[i::factor, j::factor] for i in range(factor) for j in range(factor))
  return total / factor ** 2


@functools.lru_cache(maxsize=4)
def _empty_room(key, factor: int):
  out = _pool(_rays_and_room(key)[3], factor)
  out.setflags(write=False)
  return out


def _check_pose(pose) -> np.ndarray:
  pose = skeleton.check_poses(pose, 'pose')
  if pose.shape != (skeleton.NUM_JOINTS, 3):
    raise ValueError(f'pose: expected one pose of shape (17, 3), got {pose.shape}; use '
                     'render_sequence for (frames, 17, 3).')
  return pose.astype(np.float64)


def _cast(parts, boxes, origin, dirs, to_region):
  """Nearest hit per ray: (distance (N,), index into parts or -1 (N,))."""
  depth = np.full(len(dirs), np.inf)
  winner = np.full(len(dirs), -1)
  for index, (part, box) in enumerate(zip(parts, boxes)):
    pixels = to_region(box)
    t = part.solid.intersect(origin, dirs[pixels])
    nearer = t < depth[pixels]
    depth[pixels[nearer]] = t[nearer]
    winner[pixels[nearer]] = index
  return depth, winner


def _shade(colour, parts, origin, dirs, depth, winner):
  """Writes the lit albedo of each ray's nearest part into `colour` (N, 3)."""
  hit = np.flatnonzero(winner >= 0)
  hit = hit[np.argsort(winner[hit], kind='stable')]
  for pixels in (np.split(hit, np.flatnonzero(np.diff(winner[hit])) + 1) if len(hit) else []):
    part = parts[winner[pixels[0]]]
    d = dirs[pixels]
    points = origin + depth[pixels, None] * d
    normal = part.solid.normal(points)
    light = (_AMBIENT + _KEY * np.maximum(normal @ _KEY_LIGHT, 0.0)
             + _FILL * np.maximum(-np.einsum('ij,ij->i', normal, d), 0.0))
    colour[pixels] = part.albedo(points) * light[:, None]


def _render(subject, pose, camera, size, supersample, outfit_seed):
  """(colours (H, W, 3) float in [0, 1], coverage (H, W) float)."""
  look = appearance_lib.look(subject, outfit_seed)
  pose = _check_pose(pose)
  if not isinstance(camera, camera_lib.Camera):
    raise ValueError(f'camera: expected a bds_jax.procedural.camera.Camera, got '
                     f'{type(camera).__name__}.')
  if (not isinstance(supersample, numbers.Integral) or isinstance(supersample, bool)
      or not 1 <= supersample <= 8):
    raise ValueError(f'supersample={supersample!r}: expected an int in [1, 8].')
  if size is not None:
    camera = camera.resized(size)
  height, width, ss = camera.height, camera.width, supersample
  fine = camera.resized((height * ss, width * ss))
  key = _camera_key(fine)
  image = _empty_room(key, ss).copy()
  coverage = np.zeros((height, width))

  # Only a rectangle around the person and their shadow differs from the empty room; it is
  # aligned to whole output pixels.
  parts = body.body_parts(pose, look)
  boxes = [_box(part.solid.hull(), fine) for part in parts]
  shadow_box = _box(np.concatenate([
      np.array([pose[j, 0], pose[j, 1], 0.0]) + 3.0 * sigma * _SQUARE
      for j, sigma, _ in _SHADOWS]), fine)
  used = [b for b in boxes + [shadow_box] if b[0] < b[1] and b[2] < b[3]]
  if not used:
    return image, coverage
  r0, c0 = min(b[0] for b in used) // ss * ss, min(b[2] for b in used) // ss * ss
  r1, c1 = -(-max(b[1] for b in used) // ss) * ss, -(-max(b[3] for b in used) // ss) * ss
  dirs, floor_xy, is_floor, colour = (a[r0:r1, c0:c1].reshape(-1, a.shape[-1]).copy()
                                      for a in _rays_and_room(key))

  def to_region(box):  # flat indices into the region of a pixel rectangle
    br0, br1, bc0, bc1 = box
    if br0 >= br1 or bc0 >= bc1:
      return np.zeros(0, np.int64)
    return (np.arange(br0 - r0, br1 - r0)[:, None] * (c1 - c0)
            + np.arange(bc0 - c0, bc1 - c0)).ravel()

  origin = fine.centre
  depth, winner = _cast(parts, boxes, origin, dirs, to_region)
  shadowed = to_region(shadow_box)
  shadowed = shadowed[is_floor[shadowed, 0] > 0]
  colour[shadowed] *= _contact_shadow(pose, floor_xy, shadowed)[:, None]
  _shade(colour, parts, origin, dirs, depth, winner)

  rows = slice(r0 // ss, r1 // ss), slice(c0 // ss, c1 // ss)
  image[rows] = _pool(np.clip(colour, 0.0, 1.0).reshape(r1 - r0, c1 - c0, 3), ss)
  hits = (winner >= 0).astype(np.float64).reshape(r1 - r0, c1 - c0, 1)
  coverage[rows] = _pool(hits, ss)[..., 0]
  return image, coverage


def render_person(subject, pose, camera: camera_lib.Camera, size=None, supersample: int = 2,
                  return_mask: bool = False, outfit_seed: int = -1):
  """The image of `subject` in world pose `pose`, seen by `camera`.

  Args:
    subject: a name in bds_jax.procedural.SUBJECTS or an index into it.
    pose: (17, 3) world joint positions in metres, z up (e.g. a frame of
      bds_jax.procedural.render), in any subject's proportions.
    camera: a camera.Camera (e.g. camera.default_camera(pose)).
    size: output size (int or (height, width)); None keeps the camera's. Another size
      rescales the camera's intrinsics (the same view, more or fewer pixels).
    supersample: rays per pixel along each axis (anti-aliasing).
    return_mask: also return the person's coverage (H, W) float32 in [0, 1].
    outfit_seed: -1: the subject's designed look; else the clothes, hair and build of
      appearance.random_outfit(outfit_seed) (a dataset example's `outfit_seed`).

  Returns:
    uint8 (H, W, 3), and the mask when return_mask.
  """
  colour, coverage = _render(subject, pose, camera, size, supersample, outfit_seed)
  image = np.round(colour * 255.0).astype(np.uint8)
  return (image, coverage.astype(np.float32)) if return_mask else image


def render_sequence(subject, poses, camera: camera_lib.Camera, size=None,
                    supersample: int = 2, outfit_seed: int = -1) -> np.ndarray:
  """uint8 (T, H, W, 3): render_person of every pose (T, 17, 3) with one camera."""
  poses = skeleton.check_poses(poses, 'poses')
  if poses.ndim != 3:
    raise ValueError(f'poses: expected (frames, 17, 3), got {poses.shape}.')
  return np.stack([render_person(subject, p, camera, size, supersample,
                                 outfit_seed=outfit_seed) for p in poses])
