"""Smooth scalar curves used to shape motions over time (all vectorised over frames)."""

import numpy as np


def smoothstep(x):
  """Quintic 0→1 ramp on [0, 1], clamped outside; zero velocity and acceleration at both ends."""
  x = np.clip(x, 0.0, 1.0)
  return x * x * x * (x * (6.0 * x - 15.0) + 10.0)


def pulse(phase, rise=0.35, hold=0.15, fall=0.35):
  """Per cycle: ramp 0→1 over `rise`, stay for `hold`, ramp back over `fall`, rest at 0."""
  frac = np.mod(phase, 1.0)
  return smoothstep(frac / rise) - smoothstep((frac - rise - hold) / fall)


def half_wave(phase):
  """sin² on the positive half of each cycle and 0 on the negative half (C1-smooth)."""
  s = np.sin(2.0 * np.pi * phase)
  return np.where(s > 0.0, s * s, 0.0)


def keyframes(phase, times, values):
  """Periodic keyframe curve: smoothstep between (time, value) keys within each cycle.

  `times` start at 0 and end at 1; `values` should end where they start so cycles join up.
  """
  times = np.asarray(times, np.float64)
  values = np.asarray(values, np.float64)
  frac = np.mod(phase, 1.0)
  seg = np.clip(np.searchsorted(times, frac, side='right') - 1, 0, len(times) - 2)
  u = (frac - times[seg]) / (times[seg + 1] - times[seg])
  return values[seg] + (values[seg + 1] - values[seg]) * smoothstep(u)


def sines(t, amps, freqs, phases):
  """Sum of sinusoids minus its value at t = 0, so it starts at exactly 0."""
  t = np.asarray(t, np.float64)[..., None]
  arg = 2.0 * np.pi * freqs * t + phases
  return np.sum(amps * (np.sin(arg) - np.sin(phases)), axis=-1)
