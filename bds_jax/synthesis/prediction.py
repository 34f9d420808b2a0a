"""synthesize.py predict: K futures of one observed clip, from a prior, as the HMP benchmark
draws them (bds_jax.evaluation.hmp), for one clip a user chooses.

The observation is the clip's last `observed` frames at 50 Hz (the diffusion prior's; 25
frames = 0.5 s on the protocol). K codes come from the diffusion prior given those frames
(optionally asked for a class, with classifier-free guidance), from the flow, or from N(0, I);
each is decoded from the last observed pose at the model's frame rate. The flow and N(0, I)
see only that pose. APD (and, where the true future is known, best-of-K ADE and FDE) are
measured as in the benchmark: each future resampled to 50 Hz, root-relative, metres.
"""

import dataclasses

import numpy as np

from bds_jax import errors
from bds_jax import sampling
from bds_jax.data import hmp as hmp_data
from bds_jax.data.windows import Windows
from bds_jax.metrics import hmp as hmp_metrics
from bds_jax.motion import files as motion_files
from bds_jax.synthesis.behavior import Figure
from bds_jax.synthesis.inputs import auto_indices
from bds_jax.synthesis.inputs import is_file
from bds_jax.synthesis.inputs import parse_selection
from bds_jax.viz.animation import Panel

RAW_FPS = 50.0  # the rate of the datasets' sequences and of the diffusion prior's observation
OBSERVED_FRAMES = 25  # 0.5 s at 50 Hz when no diffusion prior says otherwise (the protocol's)


@dataclasses.dataclass
class Observation:
  """One clip to predict from.

  Attributes:
    poses: (F, 17, 3) metres at 50 Hz, ending with the pose the futures start from.
    title: where it came from ('S9 squat #120', 'walk.bvh').
    label: its class name ('' when unknown).
    truth: (P, 17, 3) metres at 50 Hz, the frames after the observation (None for a file).
  """
  poses: np.ndarray
  title: str
  label: str = ''
  truth: np.ndarray | None = None

  def seen(self, lag: int) -> np.ndarray:
    """The observation at the model's rate (every lag-th frame), ending with its last pose."""
    return self.poses[::-1][::lag][::-1]

  def truth_at(self, lag: int, steps: int) -> np.ndarray | None:
    """The true continuation at the model's rate: its first `steps` frames after the last
    observed pose (None for a file)."""
    return None if self.truth is None else self.truth[lag - 1::lag][:steps]


def choose_prior(sampler: sampling.Sampler, prior: str) -> str:
  """'auto' -> the diffusion prior, else the flow, else N(0, I); a named one must exist."""
  if prior == 'auto':
    return ('diffusion' if sampler.has_diffusion else 'flow' if sampler.has_flow
            else 'gaussian')
  if prior == 'diffusion' and not sampler.has_diffusion:
    raise errors.InputError('--prior=diffusion, but the run has no diffusion prior in diffusion/ '
                            '(train one with configs/diffusion.py): use --prior=flow or '
                            'gaussian, or leave --prior out.')
  if prior == 'flow' and not sampler.has_flow:
    raise errors.InputError('--prior=flow, but the run has no flow prior in flow/ (train one '
                            'with configs/flow.py): use --prior=gaussian, or leave --prior out.')
  return prior


def from_window(windows: Windows, normalizer, spec: str, observed: int,
                seed: int) -> Observation:
  """`<split>:<i>` (the observation ends at window i's first frame, and the window's raw
  frames after it are the truth) or `<split>:auto`."""
  split, indices = parse_selection(spec, '--source')
  if indices is not None and len(indices) != 1:
    raise errors.InputError(f'--source={spec!r}: predict takes one window (<split>:<i>).')
  seqs = windows.seqs
  if indices is None:
    seq, start = windows.locate(auto_indices(windows, 1, seed)[0])
    start = max(start, observed - 1)  # far enough in for a whole observation
    if start >= windows.counts[seq]:
      raise errors.InputError(f'{seqs.name}/{split}: the window chosen is too close to its '
                              f'sequence\'s start for {observed} observed frames; name one.')
    index = int(windows.offsets[seq] + start)
  else:
    index = indices[0]
    if not 0 <= index < len(windows):
      raise errors.InputError(f'--source: window index {index} is out of range for '
                              f'{seqs.name}/{split}, which has windows 0..{len(windows) - 1}.')
    seq, start = windows.locate(index)
    if start < observed - 1:
      raise errors.InputError(
          f'--source={spec!r}: window {index} starts at frame {start} of its sequence, so fewer '
          f'than the {observed} observed frames (50 Hz) come before it; choose window '
          f'{index + observed - 1 - start} or later of that sequence.')
  raw = normalizer.denormalize(windows.data[seq])
  label = seqs.label_names[int(seqs.labels[seq])]
  return Observation(raw[start - observed + 1:start + 1],
                     f'{seqs.subject_names[int(seqs.subjects[seq])]} {label} #{index}', label,
                     raw[start + 1:start + windows.span])


def from_file(path: str, observed: int, model_fps: float, motion: dict) -> Observation:
  """The last `observed` frames at 50 Hz of a motion file (bds_jax.motion.read_motion)."""
  motion = dict(motion)
  fmt = motion_files.detect_format(path, motion.pop('format', 'auto'))
  if fmt == 'npy' and not motion.get('source_fps'):
    motion['source_fps'] = model_fps  # our .npy poses are at the model's rate (inputs.py)
  poses = motion_files.read_motion(path, RAW_FPS, format=fmt, min_frames=observed, **motion)
  if poses.ndim == 4:
    poses = poses[0]
  return Observation(poses[-observed:], path.rsplit('/', 1)[-1])


def select(spec: str, windows_of, normalizer, observed: int, seed: int, model_fps: float,
           motion: dict) -> Observation:
  """The clip of --source: a window of a split or a motion file (`motion`: read_motion's
  options)."""
  if is_file(spec):
    return from_file(spec, observed, model_fps, motion)
  split, _ = parse_selection(spec, '--source')
  return from_window(windows_of(split), normalizer, spec, observed, seed)


def predict(sampler: sampling.Sampler, obs: Observation, k: int, shown: int, key,
            prior: str, label: int | None = None, label_name: str = '',
            guidance: float = 1.0) -> tuple[Figure, np.ndarray]:
  """K futures of `obs`; returns the figure (observation, `shown` futures and the truth) and
  all K futures (K, steps + 1, 17, 3) at the model's frame rate."""
  lag = sampler.frame_lag
  futures = sampler.predict(obs.poses, k, key, prior, label=label, guidance=guidance)
  steps = futures.shape[1] - 1
  seen = obs.seen(lag)
  n_seen = len(seen)
  rows = [[Panel(f'future {i + 1} of {k}', np.concatenate([seen[:-1], f]), observed=n_seen)
           for i, f in enumerate(futures[:shown])]]
  if obs.truth is not None:
    rows[0].insert(0, Panel(f'truth: {obs.title.split(" #")[0]}',
                            np.concatenate([seen, obs.truth_at(lag, steps)]), observed=n_seen))
  raw = hmp_data.resample(obs.poses[-1], futures[:, 1:], lag, steps * lag)  # (K, P, 17, 3)
  rel = hmp_data.to_root_relative(raw)
  stats = {'prior': prior, 'K': int(k), 'observed frames (50 Hz)': int(len(obs.poses)),
           'predicted frames (50 Hz)': int(steps * lag),
           'APD (m)': hmp_metrics.apd(rel) if k > 1 else 0.0}
  if label is not None:
    stats.update({'class asked for': label_name, 'guidance scale': float(guidance)})
  if obs.truth is not None and len(obs.truth) >= steps * lag:
    m = hmp_metrics.window_metrics(rel[None], hmp_data.to_root_relative(
        obs.truth[:steps * lag])[None])
    stats.update({'best-of-K ADE (m)': float(m['ade'][0]), 'best-of-K FDE (m)':
                  float(m['fde'][0])})
  asked = f', asked for class "{label_name}" at guidance {guidance:g}' if label is not None else ''
  sees = ('the diffusion prior sees all the observed frames' if prior == 'diffusion'
          else f'the {prior} prior sees only the last observed pose')
  title = f'{k} futures of {obs.title} ({prior} prior{asked})'
  caption = (f'Grey: the observation, the last {len(obs.poses) / RAW_FPS:g} s of {obs.title} '
             f'({len(obs.poses)} frames at 50 Hz, shown at the model\'s '
             f'{sampler.fps:g} fps); then {min(shown, k)} of {k} futures, each a behavior code '
             f'from the {prior} prior decoded from the last observed pose ({sees}).'
             + (' Left: the true continuation.' if obs.truth is not None else '') +
             f' APD {stats["APD (m)"]:.3f} m over the {k} futures (resampled to 50 Hz, '
             'root-relative, as the HMP benchmark measures it).')
  return Figure(rows, title, caption, stats), futures


def check_label(label: str, names) -> int:
  """A class name or id of the run's dataset -> its id."""
  names = list(names)
  if label.isdigit() and int(label) < len(names):
    return int(label)
  if label in names:
    return names.index(label)
  raise errors.InputError(f'--label={label!r}: not a class of this run\'s dataset; choose one of '
                          f'{", ".join(names)} (or its number).')

