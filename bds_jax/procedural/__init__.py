"""Procedural 3D human motion in the 17-joint Human3.6M layout (pure numpy).

A kinematic skeleton with per-subject bone lengths performs one of several behaviors from one
of several start postures, placed somewhere in a room. Output matches bds_jax.skeleton:
(frames, 17, 3) metres, z up, 50 Hz, world frame. See rendering.py for the timeline, the
seeds and the heading convention. It generates the synthetic_motion and synthetic_people
datasets (tfds_builders/) and their true renderings (truth.py). Named for what it does, not
`synthetic`, so that it is not mistaken for bds_jax.synthesis, the library of synthesize.py.
"""

from bds_jax.procedural.behaviors import BEHAVIORS
from bds_jax.procedural.dataset import example_seeds
from bds_jax.procedural.dataset import examples
from bds_jax.procedural.postures import POSTURES
from bds_jax.procedural.rendering import FPS
from bds_jax.procedural.rendering import behavior_onset
from bds_jax.procedural.rendering import joint_angles
from bds_jax.procedural.rendering import needs_transition
from bds_jax.procedural.rendering import render
from bds_jax.procedural.room import placement
from bds_jax.procedural.subjects import SUBJECTS
from bds_jax.procedural.subjects import TEST_SUBJECTS
from bds_jax.procedural.subjects import TRAIN_SUBJECTS

__all__ = [
    'BEHAVIORS', 'FPS', 'POSTURES', 'SUBJECTS', 'TEST_SUBJECTS', 'TRAIN_SUBJECTS',
    'behavior_onset', 'example_seeds', 'examples', 'joint_angles', 'needs_transition', 'placement', 'render',
]
