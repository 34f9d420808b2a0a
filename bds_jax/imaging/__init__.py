"""Image-side data tools shared by every image dataset: stickmen and in-plane part crops.

Pixel convention: pixel (row i, column j) has its centre at x = j, y = i; keypoints are
(17, 2) in the joint order of bds_jax/skeleton.py.
"""

from bds_jax.imaging.inplane import PARTS
from bds_jax.imaging.inplane import inplane_normalize
from bds_jax.imaging.inplane import part_quads
from bds_jax.imaging.inplane import warp_quad
from bds_jax.imaging.stickman import draw_stickman

__all__ = ['PARTS', 'draw_stickman', 'inplane_normalize', 'part_quads', 'warp_quad']
