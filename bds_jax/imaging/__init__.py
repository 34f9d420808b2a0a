"""Image-side data tools shared by every image dataset: stickmen and in-plane part crops
(and, in index_images.py, the reader of DeepFashion's and Market's index.p archives, which
their TFDS builders use).

Pixel convention: pixel (row i, column j) has its centre at x = j, y = i; keypoints are
(J, 2) in a layout's joint order (imaging/layouts.py; by default the 17 joints of
bds_jax/skeleton.py).
"""

from bds_jax.imaging.inplane import GEOMETRIES as CROP_GEOMETRIES
from bds_jax.imaging.inplane import PARTS
from bds_jax.imaging.layouts import DEEPFASHION
from bds_jax.imaging.layouts import H36M_17
from bds_jax.imaging.layouts import LAYOUTS
from bds_jax.imaging.layouts import MARKET
from bds_jax.imaging.layouts import KeypointLayout
from bds_jax.imaging.inplane import inplane_normalize
from bds_jax.imaging.inplane import part_quads
from bds_jax.imaging.inplane import upstream_part_warps
from bds_jax.imaging.inplane import warp_quad
from bds_jax.imaging.part_map import part_coordinates
from bds_jax.imaging.stickman import body_mask
from bds_jax.imaging.stickman import draw_stickman

__all__ = ['CROP_GEOMETRIES', 'DEEPFASHION', 'H36M_17', 'LAYOUTS', 'MARKET', 'PARTS',
           'KeypointLayout', 'body_mask', 'draw_stickman', 'inplane_normalize',
           'part_coordinates', 'part_quads',
           'upstream_part_warps', 'warp_quad']
