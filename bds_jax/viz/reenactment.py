"""Re-enactment figure: source behavior, its self-reconstruction, and its transfer.

For each example window: the source sequence; the decoder's re-enactment of the source's
behavior code (posterior mean) from the source's own first frame; the target window (another
behavior) whose first frame is the new start posture; and the transfer, i.e. the source's
behavior re-enacted from that start posture.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from bds_jax.viz import stick_figures


def host_params(tree):
  """A host copy of (replicated) parameters, also on multi-host meshes."""
  return jax.tree.map(lambda a: np.asarray(a.addressable_data(0)), tree)


def reenact(model_def, vae_params, source, start):
  """source (B, T+1, D) normalised windows, start (B, D) -> (B, T+1, D) incl. the start frame."""

  @jax.jit
  def run(params, source, start):
    model = nnx.merge(model_def, params)
    mu, _ = model.posterior(source[:, :-1])
    out = model.decode(mu, start, source.shape[1] - 1)
    return jnp.concatenate([start[:, None], out], axis=1)

  return np.asarray(run(vae_params, jnp.asarray(source), jnp.asarray(start)))


def write_gif(setup, state, eval_set, normalizer, config, path: str):
  n = min(config.gif_examples, len(eval_set['poses']))
  src = eval_set['poses'][:n]
  tgt = eval_set['paired_poses'][:n]
  params = host_params(state['vae'])
  self_rec = reenact(setup.model_def, params, src, src[:, 0])
  transfer = reenact(setup.model_def, params, src, tgt[:, 0])
  to_m = normalizer.denormalize
  panels = [[('source', to_m(src[i])), ('self-reconstruction', to_m(self_rec[i])),
             ('target start', to_m(tgt[i])), ('transfer', to_m(transfer[i]))]
            for i in range(n)]
  frames = stick_figures.render_frames(panels)
  stick_figures.save_animation(path, frames, fps=50.0 / config.data.frame_lag)
