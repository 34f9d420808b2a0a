"""Synthetic subjects: Human3.6M subject names, train/test split and per-subject bone lengths."""

import numpy as np

SUBJECTS = ('S1', 'S5', 'S6', 'S7', 'S8', 'S9', 'S11')
TRAIN_SUBJECTS = ('S1', 'S5', 'S6', 'S7', 'S8')
TEST_SUBJECTS = ('S9', 'S11')

# Mean Human3.6M bone lengths in metres.
BONE_LENGTHS = {
    'hip_width': 0.1329,  # pelvis -> hip, lateral
    'thigh': 0.4429,  # hip -> knee
    'shin': 0.4542,  # knee -> foot (ankle)
    'lower_spine': 0.2335,  # pelvis -> spine
    'upper_spine': 0.2571,  # spine -> thorax
    'neck': 0.1211,  # thorax -> neck/nose
    'head': 0.1150,  # neck -> head top
    'shoulder_width': 0.1510,  # thorax -> shoulder, lateral
    'upper_arm': 0.2789,  # shoulder -> elbow
    'forearm': 0.2517,  # elbow -> wrist
}

# Overall size of each subject (S5 is the smallest, S6 the tallest, as in Human3.6M).
_HEIGHT_SCALE = {'S1': 0.98, 'S5': 0.96, 'S6': 1.07, 'S7': 0.99, 'S8': 1.04, 'S9': 1.00,
                 'S11': 1.02}
# Largest per-bone deviation from the overall scale.
_BONE_JITTER = 0.03


def bone_lengths(subject: str) -> dict[str, float]:
  """Bone lengths (metres) of `subject`; left and right sides are equal."""
  index = SUBJECTS.index(subject)
  # A fixed per-subject stream so every call (and every process) agrees.
  rng = np.random.default_rng(7919 + index)
  jitter = rng.uniform(-_BONE_JITTER, _BONE_JITTER, len(BONE_LENGTHS))
  scale = _HEIGHT_SCALE[subject]
  return {name: float(length * scale * (1.0 + j))
          for (name, length), j in zip(BONE_LENGTHS.items(), jitter)}
