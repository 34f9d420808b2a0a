"""Enumerating the synthetic dataset: every subject × posture × behavior × repetition."""

from collections.abc import Iterable, Iterator
import zlib

import numpy as np

from bds_jax.procedural import behaviors
from bds_jax.procedural import checks
from bds_jax.procedural import postures
from bds_jax.procedural import rendering
from bds_jax.procedural import subjects as subjects_lib


def example_seeds(seed: int, key: str) -> tuple[int, int]:
  """(behavior_seed, placement_seed) of one example, a stable function of `seed` and `key`."""
  # crc32 rather than hash(): Python's str hash changes between processes.
  state = np.random.SeedSequence([int(seed), zlib.crc32(key.encode())]).generate_state(2)
  return int(state[0] >> 1), int(state[1] >> 1)  # 31-bit, fits any integer feature


def examples(subjects: Iterable, num_frames: int, repetitions: int,
             seed: int) -> Iterator[tuple[str, dict]]:
  """Yields (key, example) for every subject × posture × behavior × repetition.

  Args:
    subjects: subject names or indices into SUBJECTS.
    num_frames: frames per sequence (50 Hz).
    repetitions: examples per (subject, posture, behavior), each with its own seeds.
    seed: dataset seed; all per-example seeds derive from it and the example key.

  Yields:
    key like 'S1/sitting/wave/0', and a dict with 'poses' (num_frames, 17, 3) float32 in
    metres, 'behavior', 'posture', 'subject' (indices into BEHAVIORS, POSTURES, SUBJECTS),
    'behavior_seed', 'placement_seed' and 'behavior_onset' (seconds from frame 0 to the start of
    the behavior proper, after the hold and any transition).
  """
  if isinstance(subjects, (str, int)):
    subjects = [subjects]
  names = [checks.resolve(s, subjects_lib.SUBJECTS, 'subject') for s in subjects]
  repetitions = checks.integer(repetitions, 'repetitions', 1)
  for subject in names:
    for posture in postures.POSTURES:
      for behavior in behaviors.BEHAVIORS:
        for rep in range(repetitions):
          key = f'{subject}/{posture}/{behavior}/{rep}'
          behavior_seed, placement_seed = example_seeds(seed, key)
          poses = rendering.render(subject, posture, behavior, behavior_seed,
                                   placement_seed, num_frames)
          yield key, {
              'poses': poses,
              'behavior': behaviors.BEHAVIORS.index(behavior),
              'posture': postures.POSTURES.index(posture),
              'subject': subjects_lib.SUBJECTS.index(subject),
              'behavior_seed': behavior_seed,
              'placement_seed': placement_seed,
              'behavior_onset': np.float32(rendering.behavior_onset(
                  subject, posture, behavior, behavior_seed)),
          }
