"""Rescales a skeleton's bones to a reference skeleton, keeping joint directions and the root.

A user's mocap has other bone lengths than the bodies the model learnt from; the behavior
model reads absolute joint positions, so a long-legged or child-sized body looks like an
unusual posture to it. `retarget` walks the tree from the pelvis and puts every joint at its
parent plus the original bone direction times the reference length: every bone keeps its
direction in every frame (so joint angles are unchanged), the pelvis keeps its path, and the
whole clip is shifted vertically so that its lowest ankle stays at the height it had.

The default reference, `REFERENCE_BONE_LENGTHS`, is the mean over the synthetic_motion
training subjects (bds_jax.procedural.subjects, S1 S5 S6 S7 S8), whose base lengths are the mean
Human3.6M bone lengths: within about 1% of both training sets. `mean_bone_lengths` measures
another reference from any poses (e.g. a run's train split).
"""

import logging

import numpy as np

from bds_jax import errors
from bds_jax import skeleton
from bds_jax.procedural import subjects

log = logging.getLogger(__name__)

# Retarget by default when some bone's median length differs from the reference by more than
# this fraction. The training subjects themselves differ by up to ~10% (S5 is 4% small, S6 7%
# large, each bone jittered by 3%), so smaller differences are within what the model saw.
DEFAULT_THRESHOLD = 0.15
MODES = ('auto', 'always', 'never')

# Which of subjects.BONE_LENGTHS each bone (parent -> joint j, j = 1..16) is.
_BONE_NAMES = (None, 'hip_width', 'thigh', 'shin', 'hip_width', 'thigh', 'shin', 'lower_spine',
               'upper_spine', 'neck', 'head', 'shoulder_width', 'upper_arm', 'forearm',
               'shoulder_width', 'upper_arm', 'forearm')
_ANKLES = (3, 6)


def _reference() -> np.ndarray:
  per_subject = [subjects.bone_lengths(s) for s in subjects.TRAIN_SUBJECTS]
  out = np.zeros(skeleton.NUM_JOINTS)
  for j, name in enumerate(_BONE_NAMES):
    if name:
      out[j] = np.mean([lengths[name] for lengths in per_subject])
  return out


# (17,) metres: the length of the bone from each joint's parent to it (0 for the pelvis).
REFERENCE_BONE_LENGTHS = _reference()


def bone_lengths(poses) -> np.ndarray:
  """(..., 17) length of the bone ending at each joint (0 for the pelvis)."""
  poses = np.asarray(poses, np.float64)
  parents = np.array(skeleton.PARENTS[1:])
  lengths = np.linalg.norm(poses[..., 1:, :] - poses[..., parents, :], axis=-1)
  return np.concatenate([np.zeros(lengths.shape[:-1] + (1,)), lengths], axis=-1)


def mean_bone_lengths(poses) -> np.ndarray:
  """(17,) the median over frames of each bone's length in (..., 17, 3) poses (a reference)."""
  return np.median(bone_lengths(poses).reshape(-1, skeleton.NUM_JOINTS), axis=0)


def largest_difference(poses, reference=None) -> tuple[float, str]:
  """The largest relative difference of a bone's median length from the reference, and the
  name of the joint that bone ends at."""
  reference = REFERENCE_BONE_LENGTHS if reference is None else np.asarray(reference)
  ratio = mean_bone_lengths(poses)[1:] / reference[1:]
  j = int(np.argmax(np.abs(ratio - 1.0)))
  return float(ratio[j] - 1.0), skeleton.JOINT_NAMES[j + 1]


def retarget(poses, reference=None) -> np.ndarray:
  """(..., T, 17, 3) poses with every bone rescaled to `reference` (17,) lengths (default
  REFERENCE_BONE_LENGTHS), directions and the pelvis path kept, lowest ankle level kept."""
  poses = np.asarray(poses, np.float64)
  reference = REFERENCE_BONE_LENGTHS if reference is None else np.asarray(reference, np.float64)
  out = np.empty_like(poses)
  out[..., 0, :] = poses[..., 0, :]
  for j in range(1, skeleton.NUM_JOINTS):  # parents come before their children
    p = skeleton.PARENTS[j]
    bone = poses[..., j, :] - poses[..., p, :]
    norm = np.linalg.norm(bone, axis=-1, keepdims=True)
    # A zero-length bone in some frame has no direction: the joint stays on its parent there.
    direction = np.divide(bone, norm, out=np.zeros_like(bone), where=norm > 1e-9)
    out[..., j, :] = out[..., p, :] + direction * reference[j]
  # Longer legs would push the feet through the floor: keep the clip's lowest ankle height.
  before = poses[..., _ANKLES, 2].min(axis=(-1, -2), keepdims=True)
  after = out[..., _ANKLES, 2].min(axis=(-1, -2), keepdims=True)
  out[..., 2] += before - after
  return out.astype(np.float32)


def maybe_retarget(poses, mode: str = 'auto', what: str = 'poses', reference=None,
                   threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
  """Retargets (..., T, 17, 3) poses when `mode` is 'always', or 'auto' and some bone differs
  from the reference by more than `threshold`; logs what it did."""
  if mode not in MODES:
    raise errors.InputError(f'retarget={mode!r}: expected one of {", ".join(MODES)}.')
  if mode == 'never':
    return np.asarray(poses, np.float32)
  diff, joint = largest_difference(poses, reference)
  if mode == 'auto' and abs(diff) <= threshold:
    return np.asarray(poses, np.float32)
  log.info('%s: bones rescaled to the reference skeleton (largest difference: the bone to %s, '
           '%+.0f%%); joint directions and the pelvis path are kept.', what, joint, 100 * diff)
  return retarget(poses, reference)


def head_top(poses) -> np.ndarray:
  """(..., 3) a head top for (..., 17, 3) poses whose source has none (SMPL, some BVH rigs):
  the thorax-to-neck/head direction continued by the reference head length, scaled by the
  body's pelvis-to-thorax distance. An approximation: a real head top leans with the skull."""
  poses = np.asarray(poses, np.float64)
  up = poses[..., 9, :] - poses[..., 8, :]
  norm = np.linalg.norm(up, axis=-1, keepdims=True)
  torso = np.linalg.norm(poses[..., 8, :] - poses[..., 0, :], axis=-1, keepdims=True)
  scale = torso / (REFERENCE_BONE_LENGTHS[7] + REFERENCE_BONE_LENGTHS[8])
  direction = np.divide(up, norm, out=np.zeros_like(up), where=norm > 1e-9)
  return poses[..., 9, :] + direction * REFERENCE_BONE_LENGTHS[10] * scale
