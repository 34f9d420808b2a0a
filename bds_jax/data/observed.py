"""Training examples for an observation-conditioned prior: observed frames and the behavior after.

An example at start i of a sequence is
  'observation': raw frames [i, i + observed) at 50 Hz (the HMP protocol's input), normalised;
  'poses': seq_len + 1 frames every frame_lag raw frames from the last observed frame
           i + observed − 1, normalised: the behavior window whose code the prior must predict
           (the behavior model encodes frames 0..seq_len−1 of it and re-enacts it from frame 0,
           the last observed pose, exactly as the HMP evaluation decodes from that pose);
  'label': the sequence's class.
Every start whose example fits inside its sequence is used once per epoch (`Windows`' rule).
"""

import numpy as np

from bds_jax.data.normalization import Normalizer
from bds_jax.data.sources import SequenceSet


class ObservedWindows:
  """Random access to every (observation, behavior window) example of a SequenceSet."""

  def __init__(self, seqs: SequenceSet, normalizer: Normalizer, observed: int, seq_len: int,
               frame_lag: int):
    if observed < 1 or seq_len < 1 or frame_lag < 1:
      raise ValueError(f'observed ({observed}), seq_len ({seq_len}) and frame_lag ({frame_lag}) '
                       'must be >= 1.')
    self.observed, self.seq_len, self.frame_lag = observed, seq_len, frame_lag
    self.span = observed + frame_lag * seq_len  # raw frames of one example
    counts = np.maximum(np.asarray(seqs.lengths) - self.span + 1, 0)
    if counts.sum() == 0:
      raise ValueError(f'No sequence of {seqs.name}/{seqs.split} holds {observed} observed frames '
                       f'and a behavior window of {seq_len + 1} frames at lag {frame_lag} '
                       f'({self.span} raw frames); the longest has {seqs.lengths.max()}.')
    self.counts = counts
    self.offsets = np.concatenate([[0], np.cumsum(counts)])
    self.seqs = seqs
    self.labels = np.asarray(seqs.labels)
    self.data = [normalizer.normalize(p) for p in seqs.poses]

  def __len__(self) -> int:
    return int(self.offsets[-1])

  def item(self, index: int, rng=None) -> dict:
    del rng
    if not 0 <= index < len(self):
      raise IndexError(f'example index {index} out of range [0, {len(self)}).')
    seq = int(np.searchsorted(self.offsets, index, side='right') - 1)
    i = int(index - self.offsets[seq])
    data = self.data[seq]
    last = i + self.observed - 1
    return {'observation': data[i:last + 1],
            'poses': data[last:last + self.frame_lag * self.seq_len + 1:self.frame_lag],
            'label': np.int32(self.labels[seq])}

  def fixed(self, num: int, seed: int) -> dict:
    """A deterministic sample of `num` examples, stacked (evaluation sets)."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(len(self), size=num, replace=num > len(self))
    items = [self.item(int(i)) for i in ids]
    return {k: np.stack([it[k] for it in items]) for k in items[0]}
