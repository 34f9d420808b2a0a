"""Human3.6M camera parameters and the projection of world joints into the videos.

Source and format. The official release stores the calibration inside `metadata.xml` in an
encoded form that only its MATLAB code reads. The same parameters are published decoded as
`camera-parameters.json` in github.com/karfly/human36m-camera-parameters (used by
learnable-triangulation and others). Put that file in the manual directory. Its layout:

  {"intrinsics": {"<camera>": {"calibration_matrix": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],
                               "distortion": [k1, k2, p1, p2, k3]}, ...},
   "extrinsics": {"<subject>": {"<camera>": {"R": 3x3, "t": [[tx], [ty], [tz]]}, ...}, ...}}

cameras 54138969, 55011271, 58860488, 60457274; subjects S1 ... S11. R and t map the world
frame of the D3_Positions poses, in millimetres, into the camera: x_cam = R·x_world + t (t in
mm); a pixel is (u, v) = (fx·x/z + cx, fy·y/z + cy) in the original video (1000×1000, or
1000×1002 for some cameras). Lens distortion is ignored, as upstream did (its intrinsics were a
pinhole fit, reference spec §1.1).
"""

import dataclasses
import json

import numpy as np

CAMERA_FILENAME = 'camera-parameters.json'
CAMERAS = ('54138969', '55011271', '58860488', '60457274')


@dataclasses.dataclass(frozen=True)
class Camera:
  """A pinhole camera: `intrinsics` K (3, 3) in video pixels, `rotation` R (3, 3),
  `translation` t (3,) in millimetres (x_cam = R·x_world + t)."""
  intrinsics: np.ndarray
  rotation: np.ndarray
  translation: np.ndarray

  def extrinsics_m(self) -> np.ndarray:
    """[R | t] (3, 4) with t in metres, for world points in metres."""
    return np.concatenate([self.rotation, self.translation[:, None] / 1000.0], axis=1)


def _matrix(value, shape, where: str, path) -> np.ndarray:
  try:
    m = np.asarray(value, np.float64)
  except (TypeError, ValueError):
    m = None
  if m is None or m.size != int(np.prod(shape)) or not np.isfinite(m).all():
    raise ValueError(f'{path}: {where} must be {shape[0]}x{shape[-1]} finite numbers, got '
                     f'{value!r:.80}.')
  return m.reshape(shape)


def load_cameras(path, subjects, cameras=CAMERAS) -> dict[tuple[str, str], Camera]:
  """{(subject, camera): Camera} for the given subjects and cameras, from camera-parameters.json.

  Raises:
    FileNotFoundError: no file at `path`.
    ValueError: not JSON of the layout above, or a subject / camera / matrix missing or
      malformed; the message names the file and the entry.
  """
  try:
    with open(path) as f:
      data = json.load(f)
  except FileNotFoundError:
    raise FileNotFoundError(
        f'{path} not found: put camera-parameters.json from '
        'github.com/karfly/human36m-camera-parameters in the manual directory '
        '(tfds_builders/human36m_frames/README.md).') from None
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(f'{path}: not valid JSON (truncated?): {e}') from e
  if not (isinstance(data, dict) and isinstance(data.get('intrinsics'), dict)
          and isinstance(data.get('extrinsics'), dict)):
    raise ValueError(f"{path}: expected a JSON object with 'intrinsics' and 'extrinsics' "
                     '(the human36m-camera-parameters layout).')
  out = {}
  for cam in cameras:
    intr = data['intrinsics'].get(cam)
    if not isinstance(intr, dict) or 'calibration_matrix' not in intr:
      raise ValueError(f"{path}: no intrinsics['{cam}']['calibration_matrix'].")
    k = _matrix(intr['calibration_matrix'], (3, 3), f"intrinsics['{cam}']", path)
    if k[0, 0] <= 0 or k[1, 1] <= 0 or np.any(k[2] != (0, 0, 1)):
      raise ValueError(f"{path}: intrinsics['{cam}'] is not a pinhole matrix "
                       '[[fx, 0, cx], [0, fy, cy], [0, 0, 1]] with positive focal lengths.')
    for subject in subjects:
      extr = data['extrinsics'].get(subject, {}).get(cam)
      where = f"extrinsics['{subject}']['{cam}']"
      if not isinstance(extr, dict) or 'R' not in extr or 't' not in extr:
        raise ValueError(f'{path}: no {where} with R and t.')
      r = _matrix(extr['R'], (3, 3), where + "['R']", path)
      if not np.allclose(r @ r.T, np.eye(3), atol=1e-4):
        raise ValueError(f"{path}: {where}['R'] is not a rotation matrix.")
      t = _matrix(extr['t'], (3,), where + "['t']", path)
      out[(subject, cam)] = Camera(k, r, t)
  return out


def project(points_m, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
  """World points (..., 3) in metres -> (pixels (..., 2) in the original video, depth z (...)
  in millimetres). Points at z <= 0 (behind the camera) get NaN pixels."""
  x = np.asarray(points_m, np.float64) * 1000.0 @ camera.rotation.T + camera.translation
  z = x[..., 2]
  with np.errstate(divide='ignore', invalid='ignore'):
    uv = (x @ camera.intrinsics.T)[..., :2] / z[..., None]
  return np.where((z > 0)[..., None], uv, np.nan), z
