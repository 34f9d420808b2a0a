"""Image datasets for the appearance model: per-person (target, appearance) pairs through grain.

Reference spec §1.8. An `ImageSet` is one split of an image dataset: its per-frame metadata
(subject, sequence, frame, 2D keypoints) in memory, its images read from the TFDS data source
on access (decoded PNGs stay on disk, so a split needs no more memory than its keypoints).

One item (`ImageSet.item`) is a pair of frames of the same person:
  image         (S, S, 3)  the target frame, float32 in [-1, 1]
  stickman      (S, S, 3)  its stickman (bds_jax.imaging.draw_stickman of its 2D keypoints);
                (S, S, 33) with `part_warp`: then each part's crop coordinates
                (bds_jax/imaging/part_map.py), what model.part_warp samples the crops with
  keypoints     (J, 2)     its 2D keypoints / S, in [0, 1]; J = 17 (synthetic_people,
                           human36m_frames) or 18 (deepfashion, market1501), in the dataset's
                           layout (its DatasetSpec's `keypoints`, bds_jax/imaging/layouts.py); missing joints
                           are negative
  appearance    the encoder's training input: the target's own image (3 channels; upstream)
                or its 10 in-plane part crops (30 channels at S / 2^box_factor) when
                `inplane` is set, cut with data.crop_geometry ('ours', or 'upstream' for
                the authors' weights; bds_jax/imaging/inplane.py); from the paired frame
                instead with appearance_source='other'
  appearance_keypoints (J, 2) the keypoints of the frame `appearance` shows: the adversary's
                targets (its code can only hide the posture of the frame it encodes)
  person_mask   (S, S, 1)  a rough silhouette of the target drawn from its keypoints
                           (imaging.body_mask): the likelihood's person weighting
  paired_image, paired_appearance   another frame of the same person (upstream `map_ids`,
                shuffled within each person): the appearance source of transfers
  subject, paired_subject, index, paired_index   int32 labels

Sampling (`train_dataset`), as upstream's `PerPersonSampler` (sampling='pid'): each element
draws a person uniformly, then one of their frames uniformly (multinomial with replacement,
weights ∝ 1/#frames of the person); sampling='epoch' instead visits every frame once per epoch
in a fresh shuffled order. Draws are seeded per element index, and the index range is sharded
over processes, so the grain iterator's state is a position and resume is exact.

Image datasets are the DatasetSpecs with a 2D keypoint layout (`bds_jax.data.datasets`): they
share the TFDS plumbing of `bds_jax.data.sources` (builders, building on first use or from
`data.manual_dir`) but not its pose-sequence view. A dataset's people are its `subject` labels,
on synthetic_people its (subject, outfit_seed) pairs (a subject wears a new outfit in every
sequence), or, for the index datasets (DeepFashion, Market), its `person` ids; a person with a
single image is paired with itself (upstream had no person ids there: see
bds_jax/imaging/index_images.py).
"""

import dataclasses
import functools

import grain
import numpy as np

from bds_jax import errors
from bds_jax import imaging
from bds_jax.data import datasets
from bds_jax.data import pipeline
from bds_jax.data import sources

SAMPLING = ('pid', 'epoch')
APPEARANCE_SOURCES = ('self', 'other')
# model.room_scene: the scene's RGB and its visibility. Its hole is a silhouette this many times
# the torso wide: on synthetic_people's demo test frames 0.06% of the person's pixels lie
# outside it (0.8% at 0.45, 4% at body_mask's 0.3: hands and hair left in the room).
SCENE_CHANNELS, SCENE_HOLE_WIDTH = 4, 0.6


def check_dataset(name: str) -> datasets.DatasetSpec:
  spec = datasets.get(name)
  if spec.is_images:
    return spec
  hint = (f' Its video frames are the image dataset {spec.image_dataset!r}.'
          if spec.image_dataset else '')
  raise errors.ConfigError(f'data.name={name!r} is not an image dataset; choose one of '
                           f'{datasets.image_datasets()}.{hint}')


def to_unit_range(image) -> np.ndarray:
  """uint8 [0, 255] -> float32 [-1, 1] (upstream's ToTensor then 2x - 1)."""
  return np.asarray(image, np.float32) / 127.5 - 1.0


@dataclasses.dataclass
class ImageSet:
  """One split of an image dataset; see the module docstring.

  Attributes:
    source: the TFDS data source (random access to decoded examples).
    image_size: S.
    keypoints: (N, J, 2) float32 pixel keypoints in `layout` (negative = missing).
    subjects: (N,) int32 subject of each frame; `subject_names` their names.
    sequences: (N,) str sequence key; frames: (N,) frame index in it.
    extras: the remaining per-frame arrays (keypoints_3d, intrinsics, extrinsics, ...).
    inplane, box_factor: the appearance input is the part crops at S / 2^box_factor.
    crop_geometry: how they are cut: 'ours' or 'upstream' (imaging.inplane_normalize).
    appearance_source: 'self' (the target's own image, upstream) or 'other' (the paired frame).
    persons: (N,) int32 person of each frame, who appearance pairs share (None: `subjects`).
    part_warp: the stickman input also carries the part crops' coordinates (model.part_warp).
    mask_room: the appearance input shows the person only: pixels outside imaging.body_mask
      of its keypoints are black, as a missing part's crop is (data.mask_room).
    room_scene: the stickman input also carries a scene, the room of another frame of the
      target's person with that frame's person cut out (model.room_scene; `scene`).
  """
  source: object
  image_size: int
  keypoints: np.ndarray
  subjects: np.ndarray
  subject_names: tuple[str, ...]
  sequences: np.ndarray
  frames: np.ndarray
  extras: dict
  inplane: bool = False
  box_factor: int = 1
  appearance_source: str = 'self'
  crop_geometry: str = 'ours'
  name: str = ''
  split: str = ''
  layout: imaging.KeypointLayout = imaging.H36M_17
  persons: np.ndarray | None = None
  part_warp: bool = False
  mask_room: bool = False
  room_scene: bool = False

  def __post_init__(self):
    if self.part_warp and not self.inplane:
      raise errors.ConfigError('model.part_warp samples the part crops into the target pose: '
                               'set data.inplane_normalize=True as well.')
    if self.appearance_source not in APPEARANCE_SOURCES:
      raise ValueError(f'data.appearance_source={self.appearance_source!r} must be one of '
                       f'{APPEARANCE_SOURCES}.')
    if self.crop_geometry not in imaging.CROP_GEOMETRIES:
      raise ValueError(f'data.crop_geometry={self.crop_geometry!r} must be one of '
                       f'{imaging.CROP_GEOMETRIES}.')
    if self.keypoints.shape[1:] != (self.layout.num_joints, 2):
      raise ValueError(f'{self.name}/{self.split}: keypoints have shape '
                       f'{self.keypoints.shape[1:]}, but its layout {self.layout.name} has '
                       f'{self.layout.num_joints} joints.')
    if self.persons is None:
      self.persons = self.subjects
    if self.persons.shape != self.subjects.shape:
      raise ValueError(f'{self.name}/{self.split}: persons have shape {self.persons.shape}, '
                       f'subjects {self.subjects.shape}.')
    self.people = [np.flatnonzero(self.persons == s) for s in np.unique(self.persons)]
    self._person_of = {int(self.persons[p[0]]): i for i, p in enumerate(self.people)}

  def __len__(self) -> int:
    return len(self.subjects)

  def image(self, index: int) -> np.ndarray:
    """The uint8 (S, S, 3) image of frame `index`."""
    return np.asarray(self.source[int(index)]['image'])

  def random_index(self, rng: np.random.Generator) -> int:
    """Upstream's per-person draw: a person uniformly, then one of their frames."""
    frames = self.people[rng.integers(len(self.people))]
    return int(frames[rng.integers(len(frames))])

  def random_partner(self, index: int, rng: np.random.Generator) -> int:
    """Another frame of the same person, uniformly (the frame itself if it is their only one:
    its transfer then is its reconstruction, and the target stays the transfer's truth)."""
    frames = self.people[self._person_of[int(self.persons[index])]]
    if len(frames) < 2:
      return int(index)
    j = int(frames[rng.integers(len(frames) - 1)])
    return j if j != index else int(frames[-1])  # skip `index` itself, uniformly over the rest

  def _appearance(self, image, index):
    if self.mask_room:  # the person only: the room outside a silhouette from its keypoints
      image = image * imaging.body_mask(self.keypoints[index], self.image_size,
                                        layout=self.layout)[..., None].astype(image.dtype)
    if not self.inplane:
      return to_unit_range(image)
    return to_unit_range(imaging.inplane_normalize(image, self.keypoints[index],
                                                   box_factor=self.box_factor,
                                                   layout=self.layout,
                                                   geometry=self.crop_geometry))

  def pose_input(self, keypoints, drawn=None, scene=None) -> np.ndarray:
    """The model's posture input for pixel keypoints (J, 2): the stickman in [-1, 1], then
    (part_warp) the part crops' coordinates in this pose, then (room_scene) `scene`, a
    frame's `scene()`. `drawn`: the keypoints' uint8 stickman, where the caller has drawn it
    already."""
    s = self.image_size
    if drawn is None:
      drawn = imaging.draw_stickman(keypoints, s, layout=self.layout)
    parts = [to_unit_range(drawn)]
    if self.part_warp:
      parts.append(imaging.part_coordinates(keypoints, s, s // 2**self.box_factor,
                                            layout=self.layout, geometry=self.crop_geometry))
    if self.room_scene:
      if scene is None:
        raise ValueError('model.room_scene: the posture input needs a scene (ImageSet.scene of '
                         'a frame seen by the same camera).')
      parts.append(scene)
    return np.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]

  def scene(self, index: int, image=None) -> np.ndarray:
    """(S, S, SCENE_CHANNELS) float32: frame `index`'s room with its person cut out, the RGB
    in [-1, 1] times `visible`, then `visible` (0 where the person may be: a silhouette from its
    keypoints SCENE_HOLE_WIDTH times the torso wide, so wider than body_mask's). `image`: the
    frame's uint8 image, where the caller has it."""
    image = self.image(index) if image is None else image
    hole = imaging.body_mask(self.keypoints[index], self.image_size,
                             width_factor=SCENE_HOLE_WIDTH, layout=self.layout)
    visible = (1.0 - hole)[..., None].astype(np.float32)
    return np.concatenate([to_unit_range(image) * visible, visible], axis=-1)

  def item(self, index: int, partner: int, scene_from: int | None = None) -> dict:
    """The pair (target `index`, appearance frame `partner`) as model inputs; with
    room_scene the scene is frame `scene_from`'s (None: the partner's)."""
    same = int(partner) == int(index)  # evaluation's own-frame items: decode and cut once
    image = self.image(index)
    other = image if same else self.image(partner)
    s = self.image_size
    paired = self._appearance(other, partner)
    # The target's own input only where it is the encoder's (appearance_source='self'):
    # its crops are most of an item's cost.
    own = paired if same or self.appearance_source != 'self' else self._appearance(image, index)
    # The scene comes from the appearance frame: the same person, so (one sequence, one
    # camera) the same room, with that frame's person cut out instead of the target's.
    scene = None
    if self.room_scene:
      scene = (self.scene(partner, other) if scene_from is None or int(scene_from) == int(partner)
               else self.scene(scene_from))
    return {
        'image': to_unit_range(image),
        'stickman': self.pose_input(self.keypoints[index], scene=scene),
        'keypoints': (self.keypoints[index] / s).astype(np.float32),
        'appearance': own,
        'appearance_keypoints': (self.keypoints[index if self.appearance_source == 'self'
                                                else partner] / s).astype(np.float32),
        'person_mask': imaging.body_mask(self.keypoints[index], s,
                                         layout=self.layout)[..., None],
        'paired_image': to_unit_range(other),
        'paired_appearance': paired,
        'subject': np.int32(self.subjects[index]),
        'paired_subject': np.int32(self.subjects[partner]),
        'index': np.int32(index),
        'paired_index': np.int32(partner),
    }


def model_inputs(model_config) -> dict:
  """The fields of a run's model config that shape its data (load_split's keywords)."""
  return {'part_warp': bool(model_config.get('part_warp', False)),
          'room_scene': bool(model_config.get('room_scene', False))}


def load_split(data_config, split: str, part_warp: bool = False,
               room_scene: bool = False) -> ImageSet:
  """A split of `data_config.name`, building the dataset first if allowed and needed;
  `part_warp`, `room_scene`: the run's model.part_warp and model.room_scene (its stickman
  input carries crop coordinates, and a scene)."""
  d = data_config
  check_dataset(d.name)
  builder = sources.get_builder(d.name, d.data_dir or None, d.builder_config or None)
  sources.prepare(builder, d.name, d.prepare, d.get('manual_dir') or None)
  # One pass for the metadata; the images are decoded again on access.
  source, meta = sources.read_records(builder, d.name, split,
                                      lambda r: {k: v for k, v in r.items() if k != 'image'})
  stack = lambda k: np.stack([m[k] for m in meta])
  size = int(builder.info.features['image'].shape[0])
  text = lambda k: np.array([sources._text_or_value(m[k])  # pylint: disable=protected-access
                             for m in meta])
  if 'subject' in meta[0]:
    subjects = stack('subject').astype(np.int32)
    subject_names = tuple(builder.info.features['subject'].names)
  else:  # index datasets: person ids (text), numbered in sorted order
    names, subjects = np.unique(text('person'), return_inverse=True)
    subjects, subject_names = subjects.astype(np.int32), tuple(str(n) for n in names)
  persons = None
  if 'outfit_seed' in meta[0]:  # synthetic_people: a subject in one outfit is one person
    pairs = np.stack([subjects.astype(np.int64), stack('outfit_seed').astype(np.int64)], 1)
    persons = np.unique(pairs, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int32)
  return ImageSet(
      source=source, image_size=size,
      keypoints=stack('keypoints_2d').astype(np.float32),
      subjects=subjects, subject_names=subject_names,
      sequences=text('sequence'),
      frames=stack('frame').astype(np.int64),
      extras={k: stack(k) for k in meta[0] if k not in ('keypoints_2d', 'subject', 'person',
                                                        'sequence', 'frame')},
      inplane=bool(d.inplane_normalize), box_factor=int(d.box_factor),
      appearance_source=d.appearance_source, crop_geometry=d.get('crop_geometry', 'ours'),
      name=d.name, split=split,
      layout=datasets.get(d.name).keypoints, persons=persons, part_warp=bool(part_warp),
      mask_room=bool(d.get('mask_room', False)), room_scene=bool(room_scene))


def _train_item(images: ImageSet, sampling: str, element, rng):
  index = images.random_index(rng) if sampling == 'pid' else int(element)
  return images.item(index, images.random_partner(index, rng))


def train_dataset(images: ImageSet, batch_size: int, seed: int, sampling: str = 'pid',
                  shard_index: int | None = None, shard_count: int | None = None,
                  num_threads: int = 2, prefetch: int = 8) -> grain.IterDataset:
  """Infinite iterator dataset of this process's batches of pairs (see the module docstring)."""
  if sampling not in SAMPLING:
    raise ValueError(f'data.sampling={sampling!r} must be one of {SAMPLING}.')
  return pipeline.sharded_batches(
      len(images), functools.partial(_train_item, images, sampling), batch_size, seed,
      f'{images.name}/{images.split}', 'frames', shard_index, shard_count, num_threads, prefetch)


def fixed_pairs(images: ImageSet, num: int, seed: int) -> dict:
  """A deterministic set of `num` pairs, stacked; targets cycle through the people, so
  consecutive items show different people (transfer figures roll the batch by one)."""
  rng = np.random.default_rng(seed)
  order = [rng.permutation(p) for p in images.people]
  items = []
  for i in range(num):
    frames = order[i % len(order)]
    index = int(frames[(i // len(order)) % len(frames)])
    items.append(images.item(index, images.random_partner(index, rng)))
  return {k: np.stack([it[k] for it in items]) for k in items[0]}
