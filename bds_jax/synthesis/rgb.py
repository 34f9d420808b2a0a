"""RGB re-enactment video: a behavior re-enacted from a person's frame, rendered in their looks.

The pipeline of the paper's video results (reference spec §1.8, §4):
  1. the target frame of an image dataset gives a person's appearance, their 3D start posture
     (`keypoints_3d`, world metres) and the camera that saw them;
  2. the behavior model re-enacts the source's behavior code μ from that start posture;
  3. each re-enacted pose is projected with the camera (the frame's own, or a default orbit
     camera that keeps the whole motion in view) and drawn as a stickman;
  4. the appearance model renders every stickman with the appearance latents of the target
     frame (posterior means: no sampling, no dropout).
On `synthetic_people` the renderer also draws the truth: the target subject really performing
the re-enacted poses (`procedural.people.render_sequence`), shown beside the synthesis, and the
source behavior rendered as its own subject.
"""

import functools

import jax
import numpy as np
from flax import nnx

from bds_jax import errors
from bds_jax import imaging
from bds_jax import sampling
from bds_jax import sharding
from bds_jax import procedural
from bds_jax.data import datasets
from bds_jax.data import images as images_lib
from bds_jax.models import appearance_losses
from bds_jax.synthesis import behavior
from bds_jax.synthesis.inputs import Clips
from bds_jax.procedural import camera as camera_lib
from bds_jax.procedural import people
from bds_jax.procedural import truth as truth_lib
from bds_jax.viz.animation import Panel

CAMERAS = ('dataset', 'orbit')


@functools.partial(jax.jit, static_argnums=0)
def _encode(model_def, params, appearance):
  """The appearance latents (posterior means) of one image, computed once per video."""
  return nnx.merge(model_def, params).encode(appearance)[2]


@functools.partial(jax.jit, static_argnums=0)
def _render(model_def, params, latents, appearance, stickmen):
  n = stickmen.shape[0]
  latents = [jax.numpy.repeat(z, n, axis=0) for z in latents]
  return nnx.merge(model_def, params).decode(stickmen, latents,
                                             appearance=jax.numpy.repeat(appearance, n, axis=0))


def check_images(image_set: images_lib.ImageSet, model_image_size: int, run_path: str):
  if image_set.image_size != model_image_size:
    raise errors.InputError(
        f'The appearance run {run_path} was trained at {model_image_size} px, but '
        f'{image_set.name} ({image_set.split}) has {image_set.image_size} px frames: use the '
        'builder config the run was trained on (--image_builder_config) or another '
        'appearance run.')
  if 'keypoints_3d' not in image_set.extras or 'intrinsics' not in image_set.extras:
    raise errors.InputError(
        f'{image_set.name} stores no 3D keypoints and cameras, so a re-enacted 3D pose cannot '
        'be placed in its frames; use synthetic_people or Human3.6M frames.')


def auto_frames(image_set: images_lib.ImageSet, n: int, seed: int) -> list[int]:
  """n frames of different people where possible (seeded)."""
  rng = np.random.default_rng(seed)
  out = []
  for p in rng.permutation(len(image_set.people)):
    frames = image_set.people[p]
    out.append(int(frames[rng.integers(len(frames))]))
  while len(out) < n:
    out.append(int(rng.integers(len(image_set))))
  return out[:n]


def camera_of(image_set: images_lib.ImageSet, index: int) -> camera_lib.Camera:
  e = image_set.extras
  return camera_lib.Camera.from_arrays(e['intrinsics'][index], e['extrinsics'][index],
                                       image_set.image_size)


def reenact_rgb(sampler: sampling.Sampler, appearance, image_set: images_lib.ImageSet,
                source: Clips, frames: list[int], camera: str = 'dataset',
                batch: int = 26) -> behavior.Figure:
  """One row per target frame: source, target frame, re-enacted 3D poses, stickmen, the
  synthesised video and (synthetic_people) the true rendering."""
  if camera not in CAMERAS:
    raise errors.InputError(f'--camera={camera!r} must be one of {CAMERAS}.')
  size = appearance.run.config.model.image_size
  check_images(image_set, size, appearance.run.path)
  for f in frames:
    if not 0 <= f < len(image_set):
      raise errors.InputError(f'--target: frame index {f} is out of range for {image_set.name}/'
                       f'{image_set.split}, which has frames 0..{len(image_set) - 1}.')
  mu = behavior.codes(sampler, behavior._first(source))  # pylint: disable=protected-access
  synthetic_data = datasets.get(image_set.name).true_renderings
  rows, stats = [], {'ssim_to_truth': []}
  for f in frames:
    start = image_set.extras['keypoints_3d'][f].astype(np.float32)
    poses = sampler.decode(mu, start[None])[0]
    cam = camera_of(image_set, f) if camera == 'dataset' else camera_lib.default_camera(
        poses, size)
    try:
      keypoints = camera_lib.project(poses, cam)
    except ValueError as e:
      raise errors.InputError(f'Frame {f}: the re-enactment leaves the camera\'s view ({e}); try '
                       '--camera=orbit.') from None
    stickmen = np.stack([imaging.draw_stickman(k, size, layout=image_set.layout)
                         for k in keypoints])
    item = image_set.item(f, f)
    crops = jax.device_put(item['appearance'][None])
    latents = _encode(appearance.model_def, appearance.params, crops)
    # model.room_scene: the target frame's room, its person cut out (with --camera=orbit the
    # room stays the frame camera's)
    scene = image_set.scene(f) if image_set.room_scene else None
    video = sharding.batched(  # fixed batches: one compilation
        lambda chunk: _render(appearance.model_def, appearance.params, latents, crops, chunk),
        (np.stack([image_set.pose_input(k, s, scene) for k, s in zip(keypoints, stickmen)]),),
        batch)
    subject = image_set.subject_names[int(image_set.subjects[f])]
    # synthetic_people has many people per subject split: name the person, not only S11
    who = (subject if image_set.persons is image_set.subjects
           else f'{subject} person {int(image_set.persons[f])}')
    row = [Panel(f'target frame {who} #{f}', images=image_set.image(f)),
           Panel('re-enacted poses', poses), Panel('stickmen', images=stickmen),
           Panel('synthesised', images=video)]
    if synthetic_data:
      truth = people.render_sequence(subject, poses, cam,
                                     outfit_seed=truth_lib.outfit_seed(image_set, f))
      row.append(Panel(f'true rendering of {who}', images=truth))
      stats['ssim_to_truth'].append(_ssim(video, truth))
    rows.append(row)
  rows[0].insert(0, _source_panel(source, size))
  for row in rows[1:]:
    row.insert(0, None)
  if not stats['ssim_to_truth']:
    stats = {}
  else:
    stats['ssim_to_truth'] = float(np.mean(stats['ssim_to_truth']))
  view = "frame's own" if camera == 'dataset' else 'default orbit'
  caption = (f'The behavior of {source.titles[0]} (its code μ) re-enacted from each target '
             f'frame\'s 3D posture, projected with the {view} camera, drawn as stickmen (in the '
             'model\'s input colours) and rendered by the appearance model in the target '
             'person\'s looks.')
  if synthetic_data:
    caption += (' Right: the true rendering of that person in the re-enacted poses; '
                '`ssim_to_truth` is the mean SSIM of synthesis vs truth.')
  return behavior.Figure(rows, f'RGB re-enactment of {source.titles[0]}', caption, stats)


def _source_panel(source: Clips, size: int) -> Panel:
  """The source as its own subject's RGB rendering when it is a synthetic subject, else 3D."""
  subject = source.titles[0].split(' ')[0]
  if subject in procedural.SUBJECTS:
    poses = source.poses[0]
    video = people.render_sequence(subject, poses, camera_lib.default_camera(poses, size))
    return Panel(f'source: {source.titles[0]}', images=video)
  return Panel(f'source: {source.titles[0]}', source.poses[0])


def _ssim(a, b) -> float:
  a = images_lib.to_unit_range(a) if a.dtype == np.uint8 else a
  b = images_lib.to_unit_range(b) if b.dtype == np.uint8 else b
  return float(np.mean(jax.device_get(appearance_losses.ssim((a + 1) / 2, (b + 1) / 2))))
