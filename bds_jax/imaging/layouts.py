"""2D keypoint layouts of the image datasets: joint order, stickman parts and in-plane parts.

Reference spec §1.8. Stickmen and part crops (stickman.py, inplane.py) are drawn from a layout,
so every dataset shares one drawing code:

  H36M_17      the 17 Human3.6M joints of bds_jax/skeleton.py (synthetic_people, human36m_frames)
  DEEPFASHION  OpenPose/COCO-18, hard-coded by upstream for DeepFashion
  MARKET       upstream's hard-coded Market-1501 order (not COCO's)

Stickman (upstream `make_joint_img`): a filled torso polygon; right, left and head lines; with
no head lines, one line from the neck (shoulder midpoint) to `headup`; face lines drawn only
when shorter than the longest head line (or that neck line).

In-plane parts: the torso quad (r_hip, r_shoulder, l_shoulder, l_hip, onto the crop corners in
that order for every layout, so a part crop means the same in every dataset), the head strip
from `head_top` to the neck, and 8 limb strips. The head's top is the head joint itself
(`head_mode='joint'`, H3.6M) or neck + 2·(nose - neck) (`'nose'`, upstream's COCO rule).
`filter_joints` are upstream's "all four torso joints present" filter of the index datasets.
`upstream_torso_quad` and `upstream_limbs` are upstream's own torso corner order and limb list
where they differ from ours (Market), used by the 'upstream' crop geometry (inplane.py).
"""

import dataclasses
import re

from bds_jax import skeleton

HEAD_MODES = ('joint', 'nose')


@dataclasses.dataclass(frozen=True)
class KeypointLayout:
  """One dataset's 2D joints; indices refer to `joint_names`."""
  name: str
  joint_names: tuple[str, ...]
  torso_polygon: tuple[int, ...]
  right_lines: tuple[tuple[int, int], ...]
  left_lines: tuple[tuple[int, int], ...]
  head_lines: tuple[tuple[int, int], ...]
  face_lines: tuple[tuple[int, int], ...]
  headup: int | None               # neck -> headup line when there are no head lines
  torso_quad: tuple[int, int, int, int]  # r_hip, r_shoulder, l_shoulder, l_hip
  r_shoulder: int
  l_shoulder: int
  head_top: int
  head_mode: str
  limbs: tuple[tuple[int, int], ...]  # r upper arm, r forearm, l ..., r thigh, r shin, l ...
  upstream_torso_quad: tuple[int, int, int, int] | None = None  # None: torso_quad
  upstream_limbs: tuple[tuple[int, int], ...] | None = None     # None: limbs

  def __post_init__(self):
    n = len(self.joint_names)
    used = (set(self.torso_polygon) | set(self.torso_quad) | {self.r_shoulder, self.l_shoulder,
            self.head_top} | {j for pairs in (self.right_lines, self.left_lines,
                                              self.head_lines, self.face_lines, self.limbs)
                              for pair in pairs for j in pair})
    if self.headup is not None:
      used.add(self.headup)
    used |= set(self.upstream_parts[0]) | {j for pair in self.upstream_parts[1] for j in pair}
    assert all(0 <= j < n for j in used), self.name
    assert self.head_mode in HEAD_MODES and len(self.limbs) == 8, self.name
    assert len(self.upstream_parts[1]) == 8, self.name
    assert self.head_lines or self.headup is not None, self.name

  @property
  def num_joints(self) -> int:
    return len(self.joint_names)

  @property
  def filter_joints(self) -> tuple[int, ...]:
    return self.torso_quad

  @property
  def upstream_parts(self) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    """(torso corners, limbs) in upstream's `norm_T` order and direction."""
    return (self.upstream_torso_quad or self.torso_quad, self.upstream_limbs or self.limbs)


_S = {name: i for i, name in enumerate(skeleton.JOINT_NAMES)}
H36M_17 = KeypointLayout(
    name='h36m17', joint_names=skeleton.JOINT_NAMES,
    torso_polygon=(_S['r_hip'], _S['r_shoulder'], _S['thorax'], _S['l_shoulder'], _S['l_hip']),
    right_lines=((_S['r_hip'], _S['r_knee']), (_S['r_knee'], _S['r_foot']),
                 (_S['r_hip'], _S['r_shoulder']), (_S['r_shoulder'], _S['r_elbow']),
                 (_S['r_elbow'], _S['r_wrist'])),
    left_lines=((_S['l_hip'], _S['l_knee']), (_S['l_knee'], _S['l_foot']),
                (_S['l_hip'], _S['l_shoulder']), (_S['l_shoulder'], _S['l_elbow']),
                (_S['l_elbow'], _S['l_wrist'])),
    head_lines=((_S['thorax'], _S['neck']), (_S['neck'], _S['head'])),
    face_lines=(), headup=None,
    torso_quad=(_S['r_hip'], _S['r_shoulder'], _S['l_shoulder'], _S['l_hip']),
    r_shoulder=_S['r_shoulder'], l_shoulder=_S['l_shoulder'], head_top=_S['head'],
    head_mode='joint',
    limbs=((_S['r_shoulder'], _S['r_elbow']), (_S['r_elbow'], _S['r_wrist']),
           (_S['l_shoulder'], _S['l_elbow']), (_S['l_elbow'], _S['l_wrist']),
           (_S['r_hip'], _S['r_knee']), (_S['r_knee'], _S['r_foot']),
           (_S['l_hip'], _S['l_knee']), (_S['l_knee'], _S['l_foot'])))

# Spec §1.8: torso [8, 2, 5, 11]; right (10,9), (9,8), (2,3), (3,4); left (13,12), (12,11),
# (5,6), (6,7); face (0,14), (0,15), (14,16), (15,17); no head lines: neck -> nose (0).
DEEPFASHION = KeypointLayout(
    name='coco18',
    joint_names=('nose', 'neck', 'r_shoulder', 'r_elbow', 'r_wrist', 'l_shoulder', 'l_elbow',
                 'l_wrist', 'r_hip', 'r_knee', 'r_ankle', 'l_hip', 'l_knee', 'l_ankle', 'r_eye',
                 'l_eye', 'r_ear', 'l_ear'),
    torso_polygon=(8, 2, 5, 11),
    right_lines=((10, 9), (9, 8), (2, 3), (3, 4)),
    left_lines=((13, 12), (12, 11), (5, 6), (6, 7)),
    head_lines=(), face_lines=((0, 14), (0, 15), (14, 16), (15, 17)), headup=0,
    torso_quad=(8, 2, 5, 11), r_shoulder=2, l_shoulder=5, head_top=0, head_mode='nose',
    limbs=((2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (11, 12), (12, 13)))

# Spec §1.8: torso [8, 9, 3, 2]; right (0,1), (1,2), (6,7), (7,8); left (3,4), (4,5), (9,10),
# (10,11); face (13,14), (13,15), (14,16), (15,17); headup = 13 (the nose).
MARKET = KeypointLayout(
    name='market18',
    joint_names=('r_ankle', 'r_knee', 'r_hip', 'l_hip', 'l_knee', 'l_ankle', 'r_wrist',
                 'r_elbow', 'r_shoulder', 'l_shoulder', 'l_elbow', 'l_wrist', 'neck', 'nose',
                 'l_eye', 'r_eye', 'l_ear', 'r_ear'),
    torso_polygon=(8, 9, 3, 2),
    right_lines=((0, 1), (1, 2), (6, 7), (7, 8)),
    left_lines=((3, 4), (4, 5), (9, 10), (10, 11)),
    head_lines=(), face_lines=((13, 14), (13, 15), (14, 16), (15, 17)), headup=13,
    torso_quad=(2, 8, 9, 3), r_shoulder=8, l_shoulder=9, head_top=13, head_mode='nose',
    # In DeepFashion's part order and direction (shoulder -> elbow first, hip -> knee -> ankle)
    # so that crop k is the same body part in every dataset; upstream listed Market's limbs as
    # (0,1), (1,2), (6,7), (7,8), (3,4), ... (shin before thigh, right limbs pointing up).
    limbs=((8, 7), (7, 6), (9, 10), (10, 11), (2, 1), (1, 0), (3, 4), (4, 5)),
    # Upstream's own Market parts (data/market.py `norm_T`), for weights trained on them: the
    # torso quad (r_shoulder, l_shoulder, l_hip, r_hip) and the limbs in its order.
    upstream_torso_quad=(8, 9, 3, 2),
    upstream_limbs=((0, 1), (1, 2), (6, 7), (7, 8), (3, 4), (4, 5), (9, 10), (10, 11)))

LAYOUTS = {layout.name: layout for layout in (H36M_17, DEEPFASHION, MARKET)}

# Spellings of joint names in index files (`joint_order`): VUnet's 'cnose', 'rshoulder', ...,
# OpenPose's 'RShoulder', COCO's 'right_shoulder', abbreviations like 'rsho' or 'lank'.
_WORDS = {'shoulder': 'shoulder', 'sho': 'shoulder', 'elbow': 'elbow', 'elb': 'elbow',
          'wrist': 'wrist', 'wri': 'wrist', 'hip': 'hip', 'knee': 'knee', 'kne': 'knee',
          'ankle': 'ankle', 'ank': 'ankle', 'eye': 'eye', 'ear': 'ear', 'nose': 'nose',
          'neck': 'neck'}


def canonical_joint_name(name) -> str:
  """'RShoulder', 'right_shoulder', 'rsho', 'r_shoulder' -> 'r_shoulder'; 'cnose' -> 'nose'."""
  if isinstance(name, bytes):
    name = name.decode('latin1')
  s = re.sub(r'[^a-z]', '', str(name).lower())
  side = ''
  for prefix, value in (('right', 'r_'), ('left', 'l_'), ('center', ''), ('r', 'r_'),
                        ('l', 'l_'), ('c', '')):
    if s.startswith(prefix) and s[len(prefix):] in _WORDS:
      side, s = value, s[len(prefix):]
      break
  return side + _WORDS.get(s, s)
