"""A clothed body built from the 17 joints: capsules and ellipsoids, each with its colours.

The joints fix every part: limbs are capsules between joints, the torso is five ellipsoids
(pelvis to chest) oriented by the hips, spine and shoulders, the head an ellipsoid along
neck -> head top. Sizes follow the pose's own shoulder and hip widths (the subject's bone
lengths) and the subject's girth. Colours come from appearance.py, with textures in
body-attached coordinates, so stripes and checks move with the body.
"""

import dataclasses
from typing import Callable

import numpy as np

from bds_jax import skeleton
from bds_jax.procedural import appearance as appearance_lib
from bds_jax.procedural import raycast

(PELVIS, R_HIP, R_KNEE, R_FOOT, L_HIP, L_KNEE, L_FOOT, SPINE, THORAX, NECK, HEAD,
 L_SHOULDER, L_ELBOW, L_WRIST, R_SHOULDER, R_ELBOW, R_WRIST) = range(skeleton.NUM_JOINTS)
assert (skeleton.JOINT_NAMES[R_FOOT], skeleton.JOINT_NAMES[HEAD],
        skeleton.JOINT_NAMES[L_WRIST]) == ('r_foot', 'head', 'l_wrist')
_DARK = np.array([0.05, 0.04, 0.04])  # eyes


@dataclasses.dataclass
class Part:
  """A named solid and the albedo (N, 3) of points (N, 3) on its surface."""
  name: str
  solid: raycast.Capsule | raycast.Ellipsoid
  albedo: Callable[[np.ndarray], np.ndarray]


def _unit(v):
  return v / max(float(np.linalg.norm(v)), 1e-12)


def _around(points, origin, axis, ref, count: int) -> np.ndarray:
  """Arc coordinate (metres of texture) around `axis`, `count` pattern periods per turn."""
  w = points - origin
  theta = np.arctan2(w @ np.cross(axis, ref), w @ ref)
  return theta / (2.0 * np.pi) * count * appearance_lib.PERIOD


def _solid_colour(colour):
  colour = np.asarray(colour, np.float64)
  return lambda p: np.broadcast_to(colour, (len(p), 3))


def _limb(name, a, b, radius, look, ref, garment_until: float | None, garment: str) -> Part:
  """A capsule a -> b wearing `garment` ('shirt', 'trousers' or 'skin' for none) from a to
  `garment_until` (a fraction of its length; None: all of it), skin beyond."""
  capsule = raycast.Capsule(a, b, radius)
  if garment == 'skin':
    return Part(name, capsule, _solid_colour(look.skin))
  axis = _unit(b - a)
  ref = ref - (ref @ axis) * axis
  ref = _unit(ref) if np.linalg.norm(ref) > 0.2 else raycast.frame(axis, ref)[:, 0]
  count = max(1, int(round(2.0 * np.pi * radius / appearance_lib.PERIOD)))
  length = float(np.linalg.norm(b - a))
  skin = np.asarray(look.skin, np.float64)

  def albedo(points):
    s = capsule.axial(points)
    colours = appearance_lib.cloth(look, garment, s, _around(points, a, axis, ref, count))
    if garment_until is None:
      return colours
    return np.where((s <= garment_until * length)[:, None], colours, skin)

  return Part(name, capsule, albedo)


def _head(pose, look, torso_left) -> list[Part]:
  up = _unit(pose[HEAD] - pose[NECK])
  axes = raycast.frame(up, torso_left)
  centre = pose[NECK] + 0.3 * (pose[HEAD] - pose[NECK])
  head = raycast.Ellipsoid(centre, axes, np.array([0.10, 0.082, 0.115]))
  skin, hair = np.asarray(look.skin, np.float64), np.asarray(look.hair, np.float64)
  hair_low = -0.95 if look.long_hair else -0.3

  def albedo(points):
    q = head.local(points)
    is_hair = (q[:, 2] > 0.35) | ((q[:, 0] < -0.1) & (q[:, 2] > hair_low))
    eye = np.zeros(len(q), bool)
    for side in (-1.0, 1.0):
      eye |= np.sum((q - [0.88, 0.36 * side, 0.18]) ** 2, axis=-1) < 0.17 ** 2
    return np.where(eye[:, None], _DARK, np.where(is_hair[:, None], hair, skin))

  parts = [Part('head', head, albedo)]
  if look.long_hair:
    back = raycast.Ellipsoid(centre - 0.045 * axes[:, 0] - 0.08 * up, axes,
                             np.array([0.07, 0.09, 0.11]))
    parts.append(Part('hair', back, _solid_colour(look.hair)))
  return parts


def body_parts(pose: np.ndarray, look: appearance_lib.Appearance) -> list[Part]:
  """The parts of a person in world pose (17, 3) float64 (metres, z up)."""
  g = look.girth
  pelvis, spine, thorax = pose[PELVIS], pose[SPINE], pose[THORAX]
  hips = pose[L_HIP] - pose[R_HIP]
  shoulders = pose[L_SHOULDER] - pose[R_SHOULDER]
  half_hips, half_shoulders = 0.5 * np.linalg.norm(hips), 0.5 * np.linalg.norm(shoulders)
  torso = raycast.frame(thorax - pelvis, _unit(hips) + _unit(shoulders))
  forward, left, up = torso[:, 0], torso[:, 1], torso[:, 2]
  torso_length = float(np.linalg.norm(thorax - pelvis))
  waist = 0.22 * torso_length
  around = int(round(2.0 * np.pi * 0.14 / appearance_lib.PERIOD))

  def torso_albedo(points):
    v = points - pelvis
    s = v @ up
    a = np.arctan2(v @ left, v @ forward) / (2.0 * np.pi) * around * appearance_lib.PERIOD
    top = appearance_lib.cloth(look, 'shirt', s - waist, a)
    low = appearance_lib.cloth(look, 'trousers', s, a)
    return np.where((s >= waist)[:, None], top, low)

  # Torso: ellipsoids stacked along pelvis -> spine -> thorax; overlapping neighbours smooth
  # the outline into one trunk.
  lower_axis, upper_axis = raycast.frame(spine - pelvis, hips), raycast.frame(thorax - spine,
                                                                             shoulders)
  hip_r, belly_r, chest_r = (half_hips + 0.05) * g, (0.75 * half_shoulders + 0.04) * g, (
      half_shoulders + 0.01) * g
  upper = float(np.linalg.norm(thorax - spine))
  parts = [
      Part('pelvis', raycast.Ellipsoid(pelvis + 0.03 * up, lower_axis,
                                       np.array([0.11 * g, hip_r, 0.12])), torso_albedo),
      Part('waist', raycast.Ellipsoid(0.5 * (pelvis + spine), lower_axis, np.array(
          [0.10 * g, 0.5 * (hip_r + belly_r) - 0.01 * g, 0.12])), torso_albedo),
      Part('belly', raycast.Ellipsoid(spine, torso, np.array([0.10 * g, belly_r, 0.14])),
           torso_albedo),
      Part('ribs', raycast.Ellipsoid(spine + 0.3 * (thorax - spine), upper_axis, np.array(
          [0.105 * g, 0.5 * (belly_r + chest_r), 0.13])), torso_albedo),
      Part('chest', raycast.Ellipsoid(spine + 0.55 * (thorax - spine), upper_axis,
                                      np.array([0.11 * g, chest_r, 0.62 * upper])),
           torso_albedo),
      Part('shoulders', raycast.Capsule(pose[R_SHOULDER], pose[L_SHOULDER], 0.05 * g),
           torso_albedo),
      Part('neck', raycast.Capsule(thorax, pose[NECK] + 0.02 * up, 0.045 * g),
           _solid_colour(look.skin)),
  ]
  parts += _head(pose, look, left)

  sleeve = None if look.long_sleeves else 0.5
  legs_until = 0.7 if look.shorts else None
  for side, (sho, elb, wri, hip, knee, foot) in (
      ('l', (L_SHOULDER, L_ELBOW, L_WRIST, L_HIP, L_KNEE, L_FOOT)),
      ('r', (R_SHOULDER, R_ELBOW, R_WRIST, R_HIP, R_KNEE, R_FOOT))):
    hand = pose[wri] + 0.055 * _unit(pose[wri] - pose[elb])
    shin_axis = _unit(pose[foot] - pose[knee])
    toe_dir = _unit(forward - (forward @ shin_axis) * shin_axis)
    parts += [
        _limb(f'{side}_upper_arm', pose[sho], pose[elb], 0.047 * g, look, forward, sleeve,
              'shirt'),
        _limb(f'{side}_forearm', pose[elb], pose[wri], 0.038 * g, look, forward, None,
              'shirt' if look.long_sleeves else 'skin'),
        Part(f'{side}_hand', raycast.sphere(hand, 0.043), _solid_colour(look.skin)),
        _limb(f'{side}_thigh', pose[hip], pose[knee], 0.072 * g, look, forward, legs_until,
              'trousers'),
        _limb(f'{side}_shin', pose[knee], pose[foot], 0.052 * g, look, forward, None,
              'skin' if look.shorts else 'trousers'),
        Part(f'{side}_foot', raycast.Capsule(pose[foot] - 0.04 * toe_dir,
                                             pose[foot] + 0.13 * toe_dir, 0.042),
             _solid_colour(look.shoes)),
    ]
  return parts
