"""Start postures as joint angles, and which body parts of each are in a neutral state."""

import numpy as np

from bds_jax.procedural import kinematics

POSTURES = ('standing', 'sitting', 'crouching', 'arms_raised', 'bent_forward', 'lunging')

# Relaxed upright stance; every DOF not named here is 0.
_NEUTRAL_DEG = {
    'l_hip_abd': 2.0, 'r_hip_abd': 2.0, 'l_knee': 3.0, 'r_knee': 3.0,
    'l_shoulder_abd': 8.0, 'r_shoulder_abd': 8.0, 'l_shoulder_flex': 3.0,
    'r_shoulder_flex': 3.0, 'l_elbow': 12.0, 'r_elbow': 12.0,
}


def _both(**angles) -> dict[str, float]:
  """Expands e.g. knee=90 into l_knee=90 and r_knee=90."""
  return {f'{side}_{name}': value for name, value in angles.items() for side in ('l', 'r')}


# Angles (degrees) that differ from the neutral stance.
_POSTURE_DEG = {
    'standing': {},
    # On a chair: thighs horizontal, shins vertical, hands resting on the thighs.
    'sitting': {**_both(hip_flex=88.0, hip_abd=4.0, knee=88.0, shoulder_flex=28.0,
                        shoulder_abd=6.0, elbow=62.0),
                'lumbar_flex': 4.0},
    # Deep crouch with the trunk leaning over the knees and arms forward for balance.
    'crouching': {**_both(hip_flex=78.0, hip_abd=6.0, knee=118.0, shoulder_flex=45.0,
                          shoulder_abd=10.0, elbow=35.0),
                  'lumbar_flex': 25.0, 'thoracic_flex': 15.0, 'neck_flex': -15.0},
    # Both arms straight up over the head.
    'arms_raised': _both(shoulder_flex=165.0, shoulder_abd=18.0, elbow=8.0),
    # Trunk bent forward with straight legs, hips pushed back; arms hang vertically.
    'bent_forward': {'lumbar_flex': 40.0, 'thoracic_flex': 30.0, 'neck_flex': -10.0,
                     **_both(hip_flex=10.0, shoulder_flex=62.0, shoulder_abd=6.0,
                             elbow=10.0)},
    # Long step with the right foot forward, both feet flat on the floor.
    'lunging': {'r_hip_flex': 70.0, 'r_knee': 75.0, 'l_hip_flex': -30.0, 'l_knee': 30.0,
                'lumbar_flex': 5.0,
                **_both(shoulder_flex=10.0, elbow=25.0)},
}

# Body parts and the DOFs they hold.
GROUPS = {
    'legs': tuple(f'{s}_{n}' for s in ('l', 'r') for n in ('hip_flex', 'hip_abd', 'knee')),
    'torso': ('lumbar_flex', 'lumbar_side', 'lumbar_twist', 'thoracic_flex', 'thoracic_side',
              'thoracic_twist', 'neck_flex', 'head_flex'),
    'r_arm': ('r_shoulder_flex', 'r_shoulder_abd', 'r_shoulder_rot', 'r_elbow'),
    'l_arm': ('l_shoulder_flex', 'l_shoulder_abd', 'l_shoulder_rot', 'l_elbow'),
}


def neutral() -> dict[str, float]:
  """The relaxed standing stance, radians."""
  return {name: np.radians(_NEUTRAL_DEG.get(name, 0.0)) for name in kinematics.DOF_NAMES}


def posture_angles(posture: str, lengths: dict[str, float] | None = None) -> dict[str, float]:
  """Joint angles (radians) of a start posture at rest.

  Args:
    posture: a name in POSTURES.
    lengths: the subject's bone lengths; when given, the knee of the rear leg of a lunge is
      adjusted so that both feet are level on the floor.
  """
  deg = {**_NEUTRAL_DEG, **_POSTURE_DEG[posture]}
  angles = {name: np.radians(deg.get(name, 0.0)) for name in kinematics.DOF_NAMES}
  if lengths is not None and posture == 'lunging':
    _level_rear_foot(angles, lengths, front='r', rear='l')
  return angles


def _level_rear_foot(angles, lengths, front: str, rear: str) -> None:
  """Sets the rear knee so that the rear ankle is as far below the hip as the front one."""
  thigh, shin = lengths['thigh'], lengths['shin']
  hip = angles[f'{front}_hip_flex']
  drop = thigh * np.cos(hip) + shin * np.cos(hip - angles[f'{front}_knee'])
  hip = angles[f'{rear}_hip_flex']
  shin_cos = np.clip((drop - thigh * np.cos(hip)) / shin, -1.0, 1.0)
  angles[f'{rear}_knee'] = hip + np.arccos(shin_cos)  # shin points backward: hip - knee < 0


def satisfies(angles: dict[str, float], requirement: str) -> bool:
  """Whether a configuration meets a behavior's precondition.

  Requirements: 'legs_standing' (hips and knees nearly straight), 'torso_upright' (trunk
  bent less than 20°), 'r_arm_down' / 'l_arm_down' (upper arm below shoulder height).
  """
  lim = np.radians
  if requirement == 'legs_standing':
    return all(abs(angles[f'{s}_{n}']) < lim(20.0)
               for s in ('l', 'r') for n in ('hip_flex', 'knee'))
  if requirement == 'torso_upright':
    return abs(angles['lumbar_flex'] + angles['thoracic_flex']) < lim(20.0)
  if requirement in ('r_arm_down', 'l_arm_down'):
    s = requirement[0]
    return np.hypot(angles[f'{s}_shoulder_flex'], angles[f'{s}_shoulder_abd']) < lim(90.0)
  raise ValueError(f'Unknown requirement {requirement!r}.')


# The body part that each requirement is about.
REQUIREMENT_GROUP = {'legs_standing': 'legs', 'torso_upright': 'torso', 'r_arm_down': 'r_arm',
                     'l_arm_down': 'l_arm'}
