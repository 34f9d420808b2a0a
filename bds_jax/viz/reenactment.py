"""Re-enactment figure: source behavior, its self-reconstruction, and its transfer.

For each example window: the source sequence; the decoder's re-enactment of the source's
behavior code (posterior mean) from the source's own first frame; the target window (another
behavior) whose first frame is the new start posture; and the transfer, i.e. the source's
behavior re-enacted from that start posture.
"""

import numpy as np

from bds_jax import inference
from bds_jax import sharding
from bds_jax.viz import stick_figures


def reenact(model_def, vae_params, source, start):
  """source (B, T+1, D) normalised windows, start (B, D) -> (B, T+1, D) incl. the start frame."""
  mu, _ = inference.posterior(model_def, vae_params, source[:, :-1])
  out = inference.decode(model_def, vae_params, mu, start, source.shape[1] - 1)
  return np.concatenate([start[:, None], np.asarray(out)], axis=1)


def write_gif(setup, state, eval_set, normalizer, config, path: str):
  n = min(config.gif_examples, len(eval_set['poses']))
  src = eval_set['poses'][:n]
  tgt = eval_set['paired_poses'][:n]
  params = sharding.host_local_copy(state['vae'])
  self_rec = reenact(setup.model_def, params, src, src[:, 0])
  transfer = reenact(setup.model_def, params, src, tgt[:, 0])
  to_m = normalizer.denormalize
  panels = [[('source', to_m(src[i])), ('self-reconstruction', to_m(self_rec[i])),
             ('target start', to_m(tgt[i])), ('transfer', to_m(transfer[i]))]
            for i in range(n)]
  frames = stick_figures.render_frames(panels)
  stick_figures.save_animation(path, frames, fps=50.0 / config.data.frame_lag)
