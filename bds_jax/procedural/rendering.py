"""Rendering a (subject, start posture, behavior) triple into world-frame joint positions.

Timeline of a rendering: hold the start posture (0.2-0.6 s), then, where the posture violates
the behavior's preconditions, a smooth transition of the conflicting body parts to the neutral
stance (standing up, straightening the trunk, lowering an arm), then the behavior until the end.

Randomness comes from two seeds only. `behavior_seed` sets the hold duration, transition speed,
tempo, amplitude, time warp and sway; `placement_seed` sets where in the room the person stands
and which way they face. Frame 0 is the start posture at rest and depends only on (subject,
posture, placement_seed), so any behavior can be re-enacted from any example's first frame.

World frame: metres, z up, the lowest foot (ankle joint) at z = 0 on every frame. The heading
is the facing direction's angle from +x, counter-clockwise about +z: the person faces
(cos h, sin h, 0) and their left is (-sin h, cos h, 0).
"""

import numpy as np

from bds_jax import skeleton
from bds_jax.procedural import behaviors
from bds_jax.procedural import checks
from bds_jax.procedural import curves
from bds_jax.procedural import kinematics
from bds_jax.procedural import postures
from bds_jax.procedural import room
from bds_jax.procedural import subjects

FPS = skeleton.FPS
# Nominal transition durations (seconds) of each body part.
_TRANSITION_SECONDS = {'legs': 1.1, 'torso': 0.9, 'r_arm': 0.7, 'l_arm': 0.7}
# Low-frequency sway: DOF and its amplitude in degrees.
_SWAY_DEG = (('lumbar_side', 1.5), ('lumbar_twist', 2.0), ('thoracic_flex', 1.5),
             ('neck_flex', 3.0))


def needs_transition(posture, behavior) -> bool:
  """Whether `behavior` from `posture` starts with a transition (e.g. standing up)."""
  posture = checks.resolve(posture, postures.POSTURES, 'posture')
  behavior = checks.resolve(behavior, behaviors.BEHAVIORS, 'behavior')
  return bool(behaviors.unmet_requirements(posture, behavior))


def _behavior_params(seed: int) -> dict:
  """All behavior-side random choices, drawn in a fixed order whatever the behavior."""
  rng = np.random.default_rng(seed)
  return {
      'hold': rng.uniform(0.2, 0.6),
      'transition_factor': rng.uniform(0.85, 1.15),
      'tempo': rng.uniform(0.85, 1.15),
      'amp': rng.uniform(0.85, 1.1),
      # Time warp: 2 slow sinusoids; slope stays in [0.7, 1.3], so warped time is monotone.
      'warp_freq': rng.uniform(0.12, 0.4, 2),
      'warp_slope': rng.uniform(-0.15, 0.15, 2),
      'warp_phase': rng.uniform(0.0, 2.0 * np.pi, 2),
      'sway_freq': rng.uniform(0.1, 0.5, (len(_SWAY_DEG), 2)),
      'sway_amp': rng.uniform(0.3, 0.7, (len(_SWAY_DEG), 2)),
      'sway_phase': rng.uniform(0.0, 2.0 * np.pi, (len(_SWAY_DEG), 2)),
  }


def _transition_groups(start, unmet) -> set[str]:
  """Body-part groups that a transition from start angles `start` must move."""
  if not unmet:
    return set()
  groups = {postures.REQUIREMENT_GROUP[r] for r in unmet}
  if 'torso' in groups and postures.satisfies(start, 'legs_standing'):
    groups.add('legs')  # straight legs lean with the trunk (hips pushed back)
  if groups & {'legs', 'torso'}:
    groups |= {'r_arm', 'l_arm'}  # arm placement depends on the body posture (lap, hanging)
  return groups


def _transition_seconds(groups, factor) -> float:
  return factor * max(_TRANSITION_SECONDS[g] for g in groups) if groups else 0.0


def _transition(q, start, unmet, t, hold, factor):
  """Blends the conflicting DOFs to neutral after the hold.

  Returns:
    (end time in seconds, names of the DOFs that end at their neutral values).
  """
  groups = _transition_groups(start, unmet)
  if not groups:
    return hold, set()
  duration = _transition_seconds(groups, factor)
  w = curves.smoothstep((t - hold) / duration)
  neutral = postures.neutral()
  reset = {name for g in groups for name in postures.GROUPS[g]}
  for name in reset:
    q[name] = start[name] + w * (neutral[name] - start[name])
  bump = 4.0 * w * (1.0 - w)  # 0 → 1 → 0 over the transition, zero velocity at the ends
  if 'legs' in groups:
    if min(start['l_hip_flex'], start['r_hip_flex']) > np.radians(45.0):
      # Lean forward to get up from sitting or crouching.
      q['lumbar_flex'] = q['lumbar_flex'] + np.radians(25.0) * bump
    # Step the rear foot in from a lunge; the square root lifts it off and sets it down
    # nearly vertically, so it does not drag along the floor.
    step = np.sqrt(bump)
    for s in ('l', 'r'):
      if start[f'{s}_hip_flex'] < np.radians(-10.0):
        q[f'{s}_hip_flex'] = q[f'{s}_hip_flex'] + np.radians(35.0) * step
        q[f'{s}_knee'] = q[f'{s}_knee'] + np.radians(60.0) * step
  return hold + duration, reset


def _hold(params: dict, hold: float | None) -> float:
  if hold is None:
    return params['hold']
  if not np.isfinite(hold) or hold < 0:
    raise ValueError(f'hold={hold!r} must be a finite number of seconds >= 0 (or None).')
  return float(hold)


def behavior_onset(subject, posture, behavior, behavior_seed: int,
                   hold: float | None = None) -> float:
  """Seconds from frame 0 to the start of the behavior proper: the hold plus any transition.

  At the onset the behavior's drive starts from zero (it ramps in over 0.4 s of behavior time),
  so a window starting there shows the behavior and nothing of the start posture's hold.
  """
  subject = checks.resolve(subject, subjects.SUBJECTS, 'subject')
  posture = checks.resolve(posture, postures.POSTURES, 'posture')
  behavior = checks.resolve(behavior, behaviors.BEHAVIORS, 'behavior')
  params = _behavior_params(checks.integer(behavior_seed, 'behavior_seed', 0))
  start = postures.posture_angles(posture, subjects.bone_lengths(subject))
  groups = _transition_groups(start, behaviors.unmet_requirements(posture, behavior))
  return _hold(params, hold) + _transition_seconds(groups, params['transition_factor'])


def joint_angles(subject, posture, behavior, behavior_seed: int,
                 num_frames: int, hold: float | None = None) -> dict[str, np.ndarray]:
  """Joint angles (name -> (num_frames,) radians) of one performance, before placement.

  `hold` overrides the seconds the start posture is held (drawn from `behavior_seed` when None);
  every other random choice stays the seed's.
  """
  subject = checks.resolve(subject, subjects.SUBJECTS, 'subject')
  posture = checks.resolve(posture, postures.POSTURES, 'posture')
  behavior = checks.resolve(behavior, behaviors.BEHAVIORS, 'behavior')
  params = _behavior_params(checks.integer(behavior_seed, 'behavior_seed', 0))
  params['hold'] = _hold(params, hold)
  t = np.arange(checks.integer(num_frames, 'num_frames', 1)) / FPS
  start = postures.posture_angles(posture, subjects.bone_lengths(subject))
  q = {name: np.full(len(t), value) for name, value in start.items()}

  unmet = behaviors.unmet_requirements(posture, behavior)
  begin, reset = _transition(q, start, unmet, t, params['hold'], params['transition_factor'])
  neutral = postures.neutral()
  base = {name: neutral[name] if name in reset else value for name, value in start.items()}

  spec = behaviors.BEHAVIOR_SPECS[behavior]
  tau = np.maximum(t - begin, 0.0)
  warped = tau + curves.sines(tau, params['warp_slope'] / (2.0 * np.pi * params['warp_freq']),
                              params['warp_freq'], params['warp_phase'])
  time = warped * params['tempo']
  drive = behaviors.Drive(time=time, phase=time / spec.period, amp=params['amp'],
                          onset=curves.smoothstep(time / 0.4))
  spec.apply(q, base, drive)

  envelope = curves.smoothstep(t / 0.8)
  for (name, amp_deg), amps, freqs, phases in zip(
      _SWAY_DEG, params['sway_amp'], params['sway_freq'], params['sway_phase']):
    q[name] = q[name] + np.radians(amp_deg) * envelope * curves.sines(t, amps, freqs, phases)
  return kinematics.clamp(q)


def render(subject, posture, behavior, behavior_seed: int, placement_seed: int,
           num_frames: int, hold: float | None = None) -> np.ndarray:
  """World-frame joint positions (num_frames, 17, 3) float32 of one performance.

  Args:
    subject: a name in SUBJECTS or an index into it.
    posture: a name in POSTURES or an index into it.
    behavior: a name in BEHAVIORS or an index into it.
    behavior_seed: seed of the behavior's timing, amplitude and noise (and the hold time).
    placement_seed: seed of the room position and heading.
    num_frames: number of frames at 50 Hz.
    hold: seconds the start posture is held before the behavior (or its transition) begins;
      None draws it from `behavior_seed` (0.2-0.6 s). `hold=0` starts moving at once, which is
      how ground-truth transfer aligns a re-enactment with a source window cut at its onset.
  """
  subject = checks.resolve(subject, subjects.SUBJECTS, 'subject')
  num_frames = checks.integer(num_frames, 'num_frames', 1)
  q = joint_angles(subject, posture, behavior, behavior_seed, num_frames, hold)
  x, y, heading = room.placement(placement_seed)
  offsets = kinematics.bone_offsets(subjects.bone_lengths(subject))
  local = kinematics.forward_kinematics(q, offsets, heading)
  return room.place(local, x, y).astype(np.float32)
