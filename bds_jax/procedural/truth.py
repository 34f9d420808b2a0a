"""The true rendering of a synthetic_people frame: a person drawn in another frame's pose.

Every synthetic_people example stores its 3D pose, camera and outfit, so the generator can draw
any person of the set in any stored pose, exactly as the dataset would have rendered them. The
appearance evaluation scores transfers against it (`bds_jax.evaluation.appearance_truth`) and
synthesize's RGB video shows it beside the synthesis (`bds_jax.synthesis.rgb`); both read it here,
in the dataset's package, not from each other.

`images` below is a `bds_jax.data.images.ImageSet` of synthetic_people (it is not imported:
the dataset's package sits below the data readers, which load its builders).
"""

from bds_jax.procedural import camera as camera_lib
from bds_jax.procedural import people


def outfit_seed(images, index: int) -> int:
  """The outfit frame `index` wears (-1: its subject's designed look; builds before 1.1.0)."""
  seeds = images.extras.get('outfit_seed')
  return -1 if seeds is None else int(seeds[index])


def true_rendering(images, person: int, target: int, supersample: int,
                   return_mask: bool = False):
  """uint8 image of the person of frame `person` (their body's look and outfit) in frame
  `target`'s stored 3D pose, seen by its stored camera: what the dataset would hold for that
  person there. With return_mask, also their coverage (S, S) in [0, 1]."""
  ex = images.extras
  cam = camera_lib.Camera.from_arrays(ex['intrinsics'][target], ex['extrinsics'][target],
                                      images.image_size)
  return people.render_person(images.subject_names[images.subjects[person]],
                              ex['keypoints_3d'][target], cam, supersample=supersample,
                              outfit_seed=outfit_seed(images, person), return_mask=return_mask)
