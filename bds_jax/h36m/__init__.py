"""Human3.6M 3D poses: action names, exp-map forward kinematics and readers of the raw layouts.

Pure NumPy (plus `cdflib` for the official CDF files); no TensorFlow. The TFDS builder in
`tfds_builders/human36m` is a thin layer over `formats.H36MReader`.
"""

from bds_jax.h36m.actions import ACTIONS
from bds_jax.h36m.actions import parse_action_name
from bds_jax.h36m.formats import BadFile
from bds_jax.h36m.formats import detect_layout
from bds_jax.h36m.formats import H36MReader
from bds_jax.h36m.formats import LAYOUTS
from bds_jax.h36m.formats import Sequence
from bds_jax.h36m.formats import SUBJECTS
from bds_jax.h36m.kinematics import expmap_to_positions
