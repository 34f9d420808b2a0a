"""Re-enactment figure: source behavior, its self-reconstruction, and its transfer.

For each example window: the source sequence; the decoder's re-enactment of the source's
behavior code (posterior mean) from the source's own first frame; the target window (another
behavior) whose first frame is the new start posture; and the transfer, i.e. the source's
behavior re-enacted from that start posture.
"""

import jax
import numpy as np

from bds_jax.viz import animation
from bds_jax.viz import video_io


def reenact(sampler, source, start):
  """source (B, T+1, D) normalised windows, start (B, D) -> (B, T+1, D) incl. the start frame."""
  mu, _ = sampler.posterior(source[:, :-1])
  out = sampler.decode_normalized(mu, start, source.shape[1] - 1)
  return np.concatenate([start[:, None], jax.device_get(out)], axis=1)


def write(path: str, sampler, source, target):
  """Writes the figure of normalised windows `source` (B, T+1, D) and `target` (another
  behavior each) with a `bds_jax.sampling.Sampler`'s model; .gif or .mp4 by the path."""
  self_rec = reenact(sampler, source, source[:, 0])
  transfer = reenact(sampler, source, target[:, 0])
  to_m = sampler.normalizer.denormalize
  P = animation.Panel
  panels = [[P('source', to_m(source[i])), P('self-reconstruction', to_m(self_rec[i])),
             P('target start', to_m(target[i])), P('transfer', to_m(transfer[i]))]
            for i in range(len(source))]
  video_io.write(path, animation.render(panels, sampler.fps), sampler.fps)
