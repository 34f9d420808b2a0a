"""video: RGB re-enactment: a source behavior re-enacted from a person's frame of the
appearance run's image dataset, projected with that frame's camera (or an orbit camera), drawn
as stickmen and rendered by the appearance model; on synthetic_people beside the true
rendering."""

import dataclasses

from bds_jax import errors
from bds_jax import runs
from bds_jax.data import images as images_lib
from bds_jax.synthesis import inputs
from bds_jax.synthesis import rgb
from bds_jax.synthesis import session
from bds_jax.synthesis.session import option

HELP = 'RGB re-enactment with an appearance model'


@dataclasses.dataclass
class Options(session.Common, session.MotionFiles):
  appearance_workdir: str = option('', 'The appearance run (configs/appearance.py).')
  source: str = option('test:auto', 'The source behavior: <split>:<i> | <split>:auto | a pose '
                       'or motion file.')
  target: str = option('test:auto', 'Frames of the appearance run\'s image dataset: '
                       '<split>:<i>,... | <split>:auto (their people and cameras).')
  num: int = option(3, 'Frames picked by auto (at most 2).')
  camera: str = option('dataset', 'The target frame\'s camera, or a default orbit camera '
                       'fitted to the whole re-enactment.', ('dataset', 'orbit'))
  image_builder_config: str = option('', 'The image dataset\'s config (default: the '
                                     'appearance run\'s).')


def check(o: Options) -> None:
  if not o.appearance_workdir:
    raise errors.InputError('video needs --appearance_workdir: an appearance run (train one with '
                            'configs/appearance.py) on an image dataset with 3D poses and '
                            'cameras.')
  if inputs.is_file(o.target):
    raise errors.InputError('video --target takes frames of the image dataset (<split>:<i>,... or '
                            '<split>:auto), not a pose file: the person\'s appearance comes from '
                            'it.')


def run(s: session.Session, o: Options) -> dict:
  app_run = runs.Run(o.appearance_workdir, o.data_dir or None)
  appearance = app_run.load_appearance()
  data = app_run.config.data
  if o.image_builder_config:
    data = data.copy_and_resolve_references()
    data.builder_config = o.image_builder_config
  model_inputs = images_lib.model_inputs(app_run.config.model)
  image_set = images_lib.load_split(data, data.eval_split, **model_inputs)
  rgb.check_images(image_set, appearance.run.config.model.image_size, app_run.path)
  split, frames = inputs.parse_selection(o.target, '--target')
  if split != data.eval_split:
    image_set = images_lib.load_split(data, split, **model_inputs)
  frames = frames if frames is not None else rgb.auto_frames(image_set, min(o.num, 2), o.seed)
  source = s.clips(o.source, 1, '--source')
  figure = rgb.reenact_rgb(s.sampler, appearance, image_set, source, frames, o.camera)
  return session.save(s, o, 'video', figure, appearance_workdir=app_run.path,
                      appearance_step=appearance.step)
