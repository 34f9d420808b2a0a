"""predict: K futures of one observed clip (a split window or a motion file) from the
diffusion prior, the flow or N(0, I): a video of the observation and a few futures beside the
truth, a still of all K endings, and the APD (bds_jax.synthesis.prediction)."""

import dataclasses
import os

import jax
import numpy as np

from bds_jax import errors
from bds_jax.synthesis import outputs
from bds_jax.synthesis import prediction
from bds_jax.synthesis import session
from bds_jax.synthesis.session import option
from bds_jax.viz import futures as futures_figure

HELP = 'K futures of one observed clip from the diffusion prior, the flow or N(0, I)'


@dataclasses.dataclass
class Options(session.Common, session.MotionFiles):
  source: str = option('test:auto', 'The clip: <split>:<i> (the observation ends at window i\'s '
                       'first frame) | <split>:auto | a pose or motion file (its last 0.5 s).')
  samples: int = option(50, 'Futures drawn (K; the benchmark\'s 50).')
  num: int = option(3, 'Futures shown in the video.')
  prior: str = option('auto', 'The prior (auto: the diffusion prior, then the flow, then '
                      'N(0, I): the first the run has).', ('auto', 'diffusion', 'flow',
                                                           'gaussian'))
  label: str = option('', 'A class (name or number) to ask the labelled diffusion prior '
                      '(<workdir>/diffusion_labels) for.')
  guidance: float = option(2.0, 'Classifier-free guidance scale with --label.')


def check(o: Options) -> None:
  if o.label and o.prior not in ('auto', 'diffusion'):
    raise errors.InputError(f'--label asks the diffusion prior for a class; --prior={o.prior} '
                            'cannot be asked.')


def _labelled(s: session.Session, label: str):
  """The class-conditioned prior's sampler, the class id and its name."""
  if s.run.diffusion_run(labelled=True) is None:
    raise errors.InputError(f'--label needs the class-conditioned diffusion prior in '
                            f'{s.run.diffusion_labels_dir} (train one with '
                            'configs/diffusion.py:labels).')
  names = s.windows('test').seqs.label_names
  i = prediction.check_label(label, names)
  return s.run.load_diffusion(labelled=True).sampler(), i, names[i]


def run(s: session.Session, o: Options) -> dict:
  name = o.name or 'predict'
  sampler, label, label_name = s.sampler, None, ''
  if o.label:
    sampler, label, label_name = _labelled(s, o.label)
  prior = prediction.choose_prior(sampler, o.prior)
  observed = (sampler.observed_frames if sampler.has_diffusion
              else prediction.OBSERVED_FRAMES)
  obs = prediction.select(o.source, s.windows, sampler.normalizer, observed, o.seed,
                          sampler.fps, o.motion())
  figure, futures = prediction.predict(sampler, obs, o.samples, min(o.num, o.samples),
                                       jax.random.key(o.seed), prior, label, label_name,
                                       o.guidance)
  lag, endpoints = sampler.frame_lag, f'{name}_endpoints.png'
  truth = obs.truth_at(lag, sampler.steps)
  os.makedirs(s.out_dir, exist_ok=True)
  futures_figure.draw(os.path.join(s.out_dir, endpoints), obs.seen(lag), futures,
                      f'All {len(futures)} futures of {obs.title} ({prior} prior)',
                      None if truth is None else np.concatenate([obs.poses[-1:], truth]))
  return outputs.save_figure(s.out_dir, name, 'predict', figure, sampler.fps, o.format,
                             still=0.7, workdir=s.run.path, images=[endpoints])
