"""A user's own motion in: motion-capture and pose files read as the model's 17-joint poses.

files.py is the one entry point (`read_motion`: BVH, SMPL joint positions, VideoPose3D output
and this project's .npy); bvh.py reads BVH files and maps their joint names; retarget.py
rescales bones to the training skeleton.
"""

from bds_jax.motion.files import read_motion

__all__ = ['read_motion']
