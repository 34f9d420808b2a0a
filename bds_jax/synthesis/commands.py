"""synthesize.py's subcommands: load a trained run once, make one figure, write it and its
manifest entry into <run>/synthesis/ (or --out_dir).

  transfer     grid: source behaviors along the top, target start postures down the side
  sample       behaviors from the flow and from N(0, I), from chosen start postures
  loop         one long sequence of chained samples
  interpolate  linear and spherical paths between two behaviors' codes
  neighbours   a re-enactment's nearest test windows in behavior space vs posture space
  umap         posterior codes vs flow and prior samples (PNG + interactive HTML)
  video        RGB re-enactment with an appearance model
  predict      K futures of one observed clip from the diffusion prior, the flow or N(0, I)
"""

import dataclasses
import functools
import json
import logging
import os

import jax

from bds_jax import errors
from bds_jax import runs
from bds_jax.data import assembly
from bds_jax.data import images as images_lib
from bds_jax.synthesis import behavior
from bds_jax.synthesis import embedding
from bds_jax.synthesis import inputs
from bds_jax.synthesis import outputs
from bds_jax.synthesis import prediction
from bds_jax.synthesis import rgb
from bds_jax.viz import futures as futures_figure

COMMANDS = ('transfer', 'sample', 'loop', 'interpolate', 'neighbours', 'umap', 'video',
            'predict')
log = logging.getLogger(__name__)


@dataclasses.dataclass
class Settings:
  """What a subcommand may use (synthesize.py's flags; unused ones are ignored)."""
  workdir: str
  out_dir: str = ''                # '' = <workdir>/synthesis
  data_dir: str = ''               # TFDS data dir ('' = as recorded in the run)
  source: str = 'test:auto'        # behaviors: <split>:<i>,<j>,... | <split>:auto | a file
  target: str = 'test:auto'        # start postures (video: frames of the image dataset)
  num: int = 3                     # sources / targets / samples per row
  points: int = 2000               # umap: test windows and samples per prior; neighbours:
                                   # re-enactments the class share is averaged over
  steps: int = 5                   # interpolation steps
  k: int = 5                       # neighbours
  prior: str = 'auto'              # loop: flow (else gaussian); predict: diffusion, flow,
                                   # gaussian, the first the run has
  samples: int = 50                # predict: futures drawn (K)
  label: str = ''                  # predict: a class to ask the labelled diffusion prior for
  guidance: float = 2.0            # predict: its classifier-free guidance scale
  num_behaviors: int = 4           # loop
  seed: int = 0
  format: str = 'mp4'              # or 'gif'
  name: str = ''                   # output name ('' = the subcommand)
  appearance_workdir: str = ''     # video: the appearance run
  camera: str = 'dataset'          # video: 'dataset' or 'orbit'
  image_builder_config: str = ''   # video: the image dataset's config ('' = the run's)
  # Motion files as --source/--target (bds_jax.motion.read_motion's options):
  motion_format: str = 'auto'      # auto | npy | bvh | smpl | videopose3d
  source_fps: float = 0.0          # the files' frame rate (0 = from the file)
  units: str = 'auto'              # auto | m | cm | mm | in | cmu | metres per unit
  up: str = 'auto'                 # auto | x | y | z | -x | -y | -z
  joint_map: str = ''              # BVH: a JSON file of our joint names -> the file's
  retarget: str = 'auto'           # auto | always | never


class Session:
  """A behavior run loaded for synthesis: its sampler (with the flow when there is one) and
  its windows per split, loaded on first use."""

  def __init__(self, s: Settings):
    self.settings = s
    self.run = runs.Run(s.workdir, s.data_dir or None)
    self.sampler = self.run.sampler()  # a prior's run: with that prior
    if self.run.trainer in ('flow', 'diffusion'):  # ... and its behavior model's data
      self.run = self.run.behavior_run()
    self.config = self.run.config
    self.out_dir = s.out_dir or os.path.join(self.run.path, outputs.DIR)

  @functools.cache  # pylint: disable=method-cache-max-size-none
  def windows(self, split: str):
    return assembly.load_windows(self.config.data, split, self.sampler.normalizer)

  def clips(self, spec: str, n: int, what: str, seed_offset: int = 0, exclude=()):
    s = self.settings
    motion = dict(fps=self.sampler.fps, format=s.motion_format, source_fps=s.source_fps or None,
                  units=s.units, up=s.up, joint_map=s.joint_map or None, retarget=s.retarget)
    return inputs.select(spec, n, self.windows, self.sampler.normalizer, self.sampler.steps + 1,
                         what, s.seed + seed_offset, exclude, motion)


def _check(s: Settings, command: str):
  if command not in COMMANDS:
    raise errors.InputError(f'Unknown subcommand {command!r}; choose one of {", ".join(COMMANDS)}.')
  if s.format not in ('mp4', 'gif'):
    raise errors.InputError(f'--format={s.format!r} must be mp4 or gif.')
  for field in ('num', 'steps', 'k', 'num_behaviors', 'points', 'samples'):
    if getattr(s, field) < 1:
      raise errors.InputError(f'--{field}={getattr(s, field)} must be at least 1.')
  if s.prior not in ('auto', 'flow', 'gaussian', 'diffusion'):
    raise errors.InputError(f'--prior={s.prior!r} must be auto, flow, gaussian or diffusion.')
  if command == 'loop' and s.prior == 'diffusion':
    raise errors.InputError('loop chains behaviors without an observation: use --prior=flow or '
                            'gaussian (predict uses the diffusion prior).')
  if s.label and command != 'predict':
    raise errors.InputError(f'--label asks the labelled diffusion prior for a class in predict, '
                            f'not in {command}.')
  if command == 'video' and not s.appearance_workdir:
    raise errors.InputError('video needs --appearance_workdir: an appearance run (train one with '
                     'configs/appearance.py) on an image dataset with 3D poses and cameras.')


def run(command: str, s: Settings) -> dict:
  """Runs one subcommand; returns its manifest entry (files relative to its out_dir)."""
  _check(s, command)
  session = Session(s)
  sampler, key = session.sampler, jax.random.key(s.seed)
  name = s.name or command
  extra = {'workdir': session.run.path}
  if command == 'transfer':
    sources = session.clips(s.source, s.num, '--source')
    targets = session.clips(s.target, s.num, '--target', 1, sources.labels)
    figure = behavior.transfer_grid(sampler, sources, targets)
  elif command == 'sample':
    figure = behavior.samples(sampler, session.clips(s.target, min(s.num, 2), '--target'),
                              s.num, key)
  elif command == 'loop':
    prior = s.prior if s.prior != 'auto' else 'flow' if sampler.has_flow else 'gaussian'
    if prior == 'flow' and not sampler.has_flow:
      raise errors.InputError(f'--prior=flow, but {session.run.path} has no flow run in flow/ '
                              '(train one with configs/flow.py): use --prior=gaussian.')
    figure = behavior.loop(sampler, session.clips(s.target, 1, '--target'), s.num_behaviors,
                           key, prior)
  elif command == 'interpolate':
    pair = session.clips(s.source, 2, '--source')
    figure = behavior.interpolate(sampler, pair, session.clips(s.target, 1, '--target', 1),
                                  s.steps)
  elif command == 'neighbours':
    source = session.clips(s.source, 1, '--source')
    target = session.clips(s.target, 1, '--target', 1, source.labels)
    figure = behavior.neighbours(sampler, session.windows('test'), source, target, s.k,
                                 many=s.points, seed=s.seed)
  elif command == 'umap':
    return _umap(session, name, key, extra)
  elif command == 'predict':
    return _predict(session, name, key, extra)
  else:
    figure, extra = _video(session, s, extra)
  entry = outputs.save_figure(session.out_dir, name, command, figure, sampler.fps, s.format,
                              **extra)
  log.info('%s: %s', command, os.path.join(session.out_dir, entry['video']))
  return entry


def _umap(session: Session, name: str, key, extra: dict) -> dict:
  sampler, s = session.sampler, session.settings
  codes, sets, labels, clips, stats = embedding.collect(sampler, session.windows('test'),
                                                        s.points, key, k=s.k)
  xy = embedding.fit(codes, s.seed)
  os.makedirs(session.out_dir, exist_ok=True)
  title = f'UMAP of behavior space ({session.config.data.name}, test split)'
  embedding.write_png(os.path.join(session.out_dir, f'{name}.png'), xy, sets, labels, title)
  embedding.write_html(os.path.join(session.out_dir, f'{name}.html'), xy, sets, labels, clips,
                       title, sampler.fps)
  n = stats['test windows']
  per_set = {x: sets.count(x) for x in dict.fromkeys(sets)}
  caption = (f'One UMAP embedding of {len(xy)} codes: '
             + ', '.join(f'{c} {x}' for x, c in per_set.items()) +
             f' (left: the windows by class, {stats["classes"]} classes; right: the sets). '
             f'Of each of the {n} windows\' {stats["k"]} nearest windows of other sequences, '
             f'{_pct(stats["k-NN class purity, behavior space (μ)"])} share its class in behavior '
             f'space (μ, not the 2-D picture) and '
             f'{_pct(stats["k-NN class purity, start-pose space"])} in start-pose space '
             f'(chance {_pct(stats["chance (sum of squared class shares)"])}). The HTML version '
             'plays a clip when a larger point is hovered.')
  entry = {'name': name, 'command': 'umap', 'title': title, 'still': f'{name}.png',
           'html': f'{name}.html', 'points': int(len(xy)), 'caption': caption,
           'stats': {**stats, **{f'points: {x}': c for x, c in per_set.items()}}, **extra}
  outputs.add_entry(session.out_dir, entry)
  return entry


def _predict(session: Session, name: str, key, extra: dict) -> dict:
  s, sampler = session.settings, session.sampler
  label = label_name = None
  if s.label:
    if s.prior not in ('auto', 'diffusion'):
      raise errors.InputError(f'--label asks the diffusion prior for a class; --prior={s.prior} '
                              'cannot be asked.')
    labelled = session.run.diffusion_run(labelled=True)
    if labelled is None:
      raise errors.InputError(f'--label needs the class-conditioned diffusion prior in '
                              f'{session.run.diffusion_labels_dir} (train one with '
                              'configs/diffusion.py:labels).')
    sampler = session.run.load_diffusion(labelled=True).sampler()
    names = session.windows('test').seqs.label_names
    label = prediction.check_label(s.label, names)
    label_name = names[label]
  prior = prediction.choose_prior(sampler, s.prior)
  observed = (sampler.observed_frames if sampler.has_diffusion
              else prediction.OBSERVED_FRAMES)
  motion = dict(format=s.motion_format, source_fps=s.source_fps or None, units=s.units, up=s.up,
                joint_map=s.joint_map or None, retarget=s.retarget)
  obs = prediction.select(s.source, session.windows, sampler.normalizer, observed, s.seed,
                          sampler.fps, motion)
  figure, futures = prediction.predict(sampler, obs, s.samples, min(s.num, s.samples), key,
                                       prior, label, label_name or '', s.guidance)
  entry = outputs.save_figure(session.out_dir, name, 'predict', figure, sampler.fps, s.format,
                              still=0.99, **extra)
  seen = obs.poses[::-1][::sampler.frame_lag][::-1]
  endpoints = f'{name}_endpoints.png'
  futures_figure.draw(os.path.join(session.out_dir, endpoints), seen, futures,
                      f'All {len(futures)} futures of {obs.title} ({prior} prior)',
                      prediction.truth_at_model_rate(obs, sampler.frame_lag, sampler.steps))
  entry['images'] = [endpoints]
  outputs.add_entry(session.out_dir, entry)
  return entry


def _pct(x: float) -> str:
  """A share as the captions and the stats tables print it."""
  return f'{100 * x:.0f}%'


def _video(session: Session, s: Settings, extra: dict):
  app_run = runs.Run(s.appearance_workdir, s.data_dir or None)
  appearance = app_run.load_appearance()
  data = app_run.config.data
  if s.image_builder_config:
    data = data.copy_and_resolve_references()
    data.builder_config = s.image_builder_config
  image_set = images_lib.load_split(data, data.eval_split)
  rgb.check_images(image_set, appearance.run.config.model.image_size, app_run.path)
  if inputs.is_file(s.target):
    raise errors.InputError('video --target takes frames of the image dataset (<split>:<i>,... or '
                     '<split>:auto), not a pose file: the person\'s appearance comes from it.')
  split, frames = inputs._indices(s.target, '--target')  # pylint: disable=protected-access
  if split != data.eval_split:
    image_set = images_lib.load_split(data, split)
  frames = frames if frames is not None else rgb.auto_frames(image_set, min(s.num, 2), s.seed)
  source = session.clips(s.source, 1, '--source')
  figure = rgb.reenact_rgb(session.sampler, appearance, image_set, source, frames, s.camera)
  return figure, {**extra, 'appearance_workdir': app_run.path,
                  'appearance_step': appearance.step}


def summary(entry: dict, out_dir: str) -> str:
  files = [entry[k] for k in ('video', 'still', 'html') if k in entry]
  stats = (f' {json.dumps(entry["stats"], ensure_ascii=False)}' if entry.get('stats')
           else '')
  return f'{entry["title"]}: ' + ', '.join(os.path.join(out_dir, f) for f in files) + stats
