"""Procedural 3D human motion in the 17-joint Human3.6M layout (pure numpy).

A kinematic skeleton with per-subject bone lengths performs one of several behaviors from one
of several start postures, placed somewhere in a room. Output matches bds_jax.skeleton:
(frames, 17, 3) metres, z up, 50 Hz, world frame. See rendering.py for the timeline, the
seeds and the heading convention.
"""

from bds_jax.synthetic.behaviors import BEHAVIORS
from bds_jax.synthetic.dataset import example_seeds
from bds_jax.synthetic.dataset import examples
from bds_jax.synthetic.postures import POSTURES
from bds_jax.synthetic.rendering import FPS
from bds_jax.synthetic.rendering import behavior_onset
from bds_jax.synthetic.rendering import joint_angles
from bds_jax.synthetic.rendering import needs_transition
from bds_jax.synthetic.rendering import render
from bds_jax.synthetic.room import placement
from bds_jax.synthetic.subjects import SUBJECTS
from bds_jax.synthetic.subjects import TEST_SUBJECTS
from bds_jax.synthetic.subjects import TRAIN_SUBJECTS

__all__ = [
    'BEHAVIORS', 'FPS', 'POSTURES', 'SUBJECTS', 'TEST_SUBJECTS', 'TRAIN_SUBJECTS',
    'behavior_onset', 'example_seeds', 'examples', 'joint_angles', 'needs_transition', 'placement', 'render',
]
