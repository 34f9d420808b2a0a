"""Fixed-length training windows over whole sequences (reference spec §1.5–1.6).

A window is `seq_len + 1` frames taken every `frame_lag` raw frames (51 frames spanning 100 raw
frames = 2 s at the default lag 2, i.e. the model sees 25 Hz): inputs are frames 0..seq_len-1,
targets frames 1..seq_len. Every start index whose window fits inside its sequence is used
exactly once per epoch. Upstream instead shifted windows that ran past a video's end back onto
its last frames, over-sampling every video's ending; we do not.

Each window can carry a paired window of a *different* class (behavior/action), drawn
uniformly over all windows of the other classes, for transfer. A set whose windows are all of
one class (a user's unlabelled motion, docs/own_mocap.md) has no other class: there the pair
is drawn over all its windows, so training and its re-enactment figure still run (the suites
that need classes say so instead).
"""

import logging

import numpy as np

from bds_jax import errors

from bds_jax.data.normalization import Normalizer
from bds_jax.data.sources import SequenceSet

log = logging.getLogger(__name__)


class Windows:
  """Random access to every valid window of a SequenceSet, normalised, as (seq_len + 1, 51)."""

  def __init__(self, seqs: SequenceSet, normalizer: Normalizer, seq_len: int = 50,
               frame_lag: int = 2):
    if seq_len < 1 or frame_lag < 1:
      raise ValueError(f'seq_len ({seq_len}) and frame_lag ({frame_lag}) must be >= 1.')
    self.seq_len = seq_len
    self.frame_lag = frame_lag
    self.span = frame_lag * seq_len + 1  # raw frames covered by one window
    counts = np.maximum(seqs.lengths - self.span + 1, 0)
    if counts.sum() == 0:
      raise errors.ConfigError(
          f'No sequence of {seqs.name}/{seqs.split} is long enough for a window of '
          f'{seq_len + 1} frames at lag {frame_lag} ({self.span} raw frames); the longest has '
          f'{seqs.lengths.max()} frames. Lower data.seq_len or data.frame_lag.')
    self.num_too_short = int((counts == 0).sum())
    self.counts = counts
    self.offsets = np.concatenate([[0], np.cumsum(counts)])
    self.seqs = seqs
    self.data = [normalizer.normalize(p) for p in seqs.poses]  # (frames, 51) each
    self.labels = seqs.labels
    # For pairing: per class, the cumulative window counts of sequences of other classes / of
    # the same class, so pairs are drawn uniformly over windows.
    self._other, self._same = {}, {}
    self.num_classes = len(np.unique(self.labels[counts > 0]))
    if self.num_classes == 1:
      log.info('%s/%s: every window is of one class: transfer pairs are drawn from all '
               'windows.', seqs.name, seqs.split)
    for label in np.unique(self.labels):
      other = self.labels != label if self.num_classes > 1 else np.ones(len(counts), bool)
      for table, mask in ((self._other, other), (self._same, self.labels == label)):
        seqs = np.flatnonzero(mask & (counts > 0))
        if len(seqs):
          table[int(label)] = (seqs, np.cumsum(counts[seqs]))

  def __len__(self) -> int:
    return int(self.offsets[-1])

  def locate(self, index: int) -> tuple[int, int]:
    """Window index -> (sequence index, start frame)."""
    if not 0 <= index < len(self):
      raise IndexError(f'window index {index} out of range [0, {len(self)}).')
    seq = int(np.searchsorted(self.offsets, index, side='right') - 1)
    return seq, int(index - self.offsets[seq])

  def window(self, seq: int, start: int) -> np.ndarray:
    return self.data[seq][start:start + self.span:self.frame_lag]

  def _draw(self, table, label: int, rng: np.random.Generator, what: str) -> tuple[int, int]:
    if label not in table:
      raise ValueError(f'Cannot pair class {label}: {self.seqs.name}/{self.seqs.split} has no '
                       f'window of {what}.')
    seqs, cum = table[label]
    u = int(rng.integers(cum[-1]))
    k = int(np.searchsorted(cum, u, side='right'))
    return int(seqs[k]), u - int(cum[k] - self.counts[seqs[k]])

  def random_other(self, label: int, rng: np.random.Generator) -> tuple[int, int]:
    """A uniformly drawn window (seq, start) whose class differs from `label`."""
    return self._draw(self._other, label, rng, 'any other class')

  def random_same(self, label: int, rng: np.random.Generator) -> tuple[int, int]:
    """A uniformly drawn window (seq, start) of the same class as `label`."""
    return self._draw(self._same, label, rng, 'this class')

  def item(self, index: int, rng: np.random.Generator | None = None, paired: bool = False):
    """The example for window `index`: a dict of numpy arrays."""
    seq, start = self.locate(index)
    out = {'poses': self.window(seq, start), 'label': np.int32(self.labels[seq]),
           'subject': np.int32(self.seqs.subjects[seq]), 'seq': np.int32(seq),
           'start': np.int32(start)}
    if paired:
      if rng is None:
        raise ValueError('paired windows need an rng')
      pseq, pstart = self.random_other(int(self.labels[seq]), rng)
      out.update(paired_poses=self.window(pseq, pstart),
                 paired_label=np.int32(self.labels[pseq]), paired_seq=np.int32(pseq),
                 paired_start=np.int32(pstart))
    return out
