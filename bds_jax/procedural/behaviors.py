"""Behaviors: cyclic joint-angle motions performed on top of a base configuration.

A behavior changes the angles `q` (name -> (T,) radians) in place. Before the behavior starts
its drive time is 0 and every behavior leaves `q` untouched there, so it joins the preceding
hold/transition continuously. Goal-directed motions (raise an arm, squat, bow) blend from the
base angles toward a target and back, so they work from any start posture that does not
already contradict them; contradictions are listed in `requires` (see postures.satisfies) and
resolved by a transition inserted before the behavior.
"""

import dataclasses
from typing import Callable

import numpy as np

from bds_jax.procedural import curves
from bds_jax.procedural import postures

_R = np.radians


@dataclasses.dataclass(frozen=True)
class Drive:
  """Timing of one performance.

  Attributes:
    time: (T,) behavior time in seconds at nominal tempo (already tempo-scaled and
      time-warped); 0 up to the start of the behavior, then increasing.
    phase: (T,) time / period: number of cycles performed.
    amp: amplitude factor around 1.
    onset: (T,) 0→1 ramp over the first 0.4 s, to start oscillations without a jerk.
  """
  time: np.ndarray
  phase: np.ndarray
  amp: float
  onset: np.ndarray


@dataclasses.dataclass(frozen=True)
class Behavior:
  """A named motion, its cycle length and the start configuration it needs."""
  name: str
  period: float  # Seconds per cycle at nominal tempo.
  requires: tuple[str, ...]  # Preconditions on the start configuration.
  apply: Callable[[dict, dict, Drive], None]


def _blend(q, base, targets_deg, w):
  """Moves each named angle from its base value toward a target by weight w."""
  for name, target in targets_deg.items():
    q[name] = q[name] + w * (_R(target) - base[name])


def _add(q, offsets_deg, w):
  """Adds weight w times each named offset (degrees) to the angles."""
  for name, offset in offsets_deg.items():
    q[name] = q[name] + w * _R(offset)


def _raise_arms(sides):
  def apply(q, base, d):
    w = curves.pulse(d.phase)
    elevation = 120.0 + 45.0 * d.amp
    for s in sides:
      _blend(q, base, {f'{s}_shoulder_flex': elevation, f'{s}_shoulder_abd': 22.0,
                       f'{s}_shoulder_rot': 0.0, f'{s}_elbow': 8.0}, w)
    if len(sides) == 1:
      _add(q, {'lumbar_side': 4.0}, w)  # lean away from the raised arm
    else:
      _add(q, {'neck_flex': -12.0}, w)  # look up
  return apply


def _after_reach(d, reach_time, period):
  """Cycle phase of a motion that starts after a reach of `reach_time` s, and its fade-in."""
  t = np.maximum(d.time - reach_time, 0.0)
  return t / period, curves.smoothstep(t / 0.25)


_WAVE_PERIOD = 0.55


def _wave(q, base, d):
  # Bring the hand up beside the head (upper arm out, turned up), then wave the forearm.
  reach_time = 0.6
  _blend(q, base, {'r_shoulder_flex': 15.0, 'r_shoulder_abd': 100.0, 'r_shoulder_rot': 85.0,
                   'r_elbow': 95.0}, curves.smoothstep(d.time / reach_time))
  phase, fade_in = _after_reach(d, reach_time, _WAVE_PERIOD)
  swing = np.sin(2.0 * np.pi * phase) * fade_in
  _add(q, {'r_elbow': 32.0 * d.amp, 'lumbar_side': 2.0}, swing)


def _walk_in_place(q, base, d):
  del base
  right, left = curves.half_wave(d.phase), curves.half_wave(d.phase + 0.5)
  # Knee about twice the hip flexion lifts the foot straight up instead of scuffing it forward.
  _add(q, {'r_hip_flex': 50.0 * d.amp, 'r_knee': 95.0 * d.amp}, right)
  _add(q, {'l_hip_flex': 50.0 * d.amp, 'l_knee': 95.0 * d.amp}, left)
  # Arms swing against the legs; the trunk shifts over the standing leg.
  swing = np.sin(2.0 * np.pi * d.phase) * d.onset
  _add(q, {'l_shoulder_flex': 22.0 * d.amp, 'r_shoulder_flex': -22.0 * d.amp,
           'lumbar_side': 3.0}, swing)
  _add(q, {'l_elbow': 18.0, 'r_elbow': 18.0}, d.onset)


def _squat(q, base, d):
  w = curves.pulse(d.phase, rise=0.35, hold=0.1, fall=0.35)
  depth = min(d.amp, 1.05)
  _add(q, {'l_hip_flex': 92.0 * depth, 'r_hip_flex': 92.0 * depth,
           'l_knee': 118.0 * depth, 'r_knee': 118.0 * depth, 'lumbar_flex': 28.0,
           'thoracic_flex': 10.0, 'neck_flex': -15.0}, w)
  # Opening the hips a little keeps the feet at their width on the floor.
  _add(q, {'l_hip_abd': 2.7, 'r_hip_abd': 2.7}, (depth * w)**3)
  for s in ('l', 'r'):  # arms forward for balance
    _blend(q, base, {f'{s}_shoulder_flex': 115.0, f'{s}_shoulder_abd': 8.0,
                     f'{s}_shoulder_rot': 0.0, f'{s}_elbow': 8.0}, w)


def _turn_torso(q, base, d):
  del base
  turn = np.sin(2.0 * np.pi * d.phase) * d.onset
  _add(q, {'lumbar_twist': 15.0 * d.amp, 'thoracic_twist': 28.0 * d.amp,
           'r_shoulder_flex': 25.0 * d.amp, 'l_shoulder_flex': -25.0 * d.amp}, turn)
  _add(q, {'l_elbow': 25.0, 'r_elbow': 25.0}, d.onset)


def _kick(q, base, d):
  del base
  times = (0.0, 0.22, 0.4, 0.56, 0.76, 1.0)  # chamber, extend, re-chamber, down, rest
  key = lambda *values: curves.keyframes(d.phase, times, values)
  q['r_hip_flex'] = q['r_hip_flex'] + _R(d.amp * key(0, 55, 85, 55, 0, 0))
  q['r_knee'] = q['r_knee'] + _R(key(0, 105, 2, 105, 0, 0))
  q['l_knee'] = q['l_knee'] + _R(key(0, 8, 10, 8, 0, 0))  # soften the standing knee
  q['lumbar_flex'] = q['lumbar_flex'] + _R(key(0, -3, -10, -3, 0, 0))
  arms = _R(key(0, 15, 25, 15, 0, 0))  # arms out for balance
  q['l_shoulder_abd'] = q['l_shoulder_abd'] + arms
  q['r_shoulder_abd'] = q['r_shoulder_abd'] + arms


def _bow(q, base, d):
  w = curves.pulse(d.phase, rise=0.35, hold=0.2, fall=0.35)
  trunk = 60.0 * d.amp
  # Arms keep hanging down, so they turn forward relative to the trunk.
  _add(q, {'lumbar_flex': 0.6 * trunk, 'thoracic_flex': 0.4 * trunk, 'neck_flex': 15.0,
           'l_shoulder_flex': 0.85 * trunk, 'r_shoulder_flex': 0.85 * trunk}, w)
  if postures.satisfies(base, 'legs_standing'):  # standing: hips go back to keep balance
    _add(q, {'l_hip_flex': 10.0, 'r_hip_flex': 10.0}, w)


_CLAP_PERIOD = 0.5


def _clap(q, base, d):
  # Bring both arms forward and open, then close and open them.
  reach_time = 0.5
  arms = {}
  for s in ('l', 'r'):
    arms.update({f'{s}_shoulder_flex': 80.0, f'{s}_shoulder_abd': 30.0,
                 f'{s}_shoulder_rot': 0.0, f'{s}_elbow': 25.0})
  _blend(q, base, arms, curves.smoothstep(d.time / reach_time))
  phase, fade_in = _after_reach(d, reach_time, _CLAP_PERIOD)
  close = (0.5 - 0.5 * np.cos(2.0 * np.pi * phase)) * fade_in
  # Closing to -24° abduction brings the wrists within a few cm: the palms meet.
  _add(q, {'l_shoulder_abd': -54.0, 'r_shoulder_abd': -54.0}, close)


def _side_bend(q, base, d):
  del base
  bend = np.sin(2.0 * np.pi * d.phase) * d.onset
  _add(q, {'lumbar_side': 20.0 * d.amp, 'thoracic_side': 15.0 * d.amp}, bend)


_BEHAVIOR_LIST = (
    Behavior('raise_right_arm', 2.4, ('r_arm_down',), _raise_arms(('r',))),
    Behavior('raise_both_arms', 2.6, ('r_arm_down', 'l_arm_down'), _raise_arms(('l', 'r'))),
    Behavior('wave', _WAVE_PERIOD, (), _wave),
    Behavior('walk_in_place', 1.1, ('legs_standing', 'torso_upright'), _walk_in_place),
    Behavior('squat', 2.6, ('legs_standing', 'torso_upright'), _squat),
    Behavior('turn_torso', 2.8, (), _turn_torso),
    Behavior('kick', 2.0, ('legs_standing',), _kick),
    Behavior('bow', 2.8, ('torso_upright',), _bow),
    Behavior('clap', _CLAP_PERIOD, (), _clap),
    Behavior('side_bend', 3.0, ('torso_upright',), _side_bend),
)

BEHAVIORS = tuple(b.name for b in _BEHAVIOR_LIST)
BEHAVIOR_SPECS = {b.name: b for b in _BEHAVIOR_LIST}


def unmet_requirements(posture: str, behavior: str) -> tuple[str, ...]:
  """The preconditions of `behavior` that the start `posture` violates."""
  angles = postures.posture_angles(posture)
  return tuple(r for r in BEHAVIOR_SPECS[behavior].requires
               if not postures.satisfies(angles, r))
