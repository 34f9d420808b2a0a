"""Ground-truth re-enactment error during training (synthetic_motion only): scalars for curves.

The training-time slice of `gt_transfer`: on a fixed set of onset-aligned test pairs, the mean
MPJPE (mm) of re-enacting each source window from its own first frame (`self_mm`) and from
another start posture that needs no transition (`direct_mm`), each beside holding the start
posture (`*_static_mm`) and as a ratio to it (`*_vs_static`; below 1 beats holding still).
Logged every `every_steps`, they give the curve against steps that says when more training
stops paying. The pairs and their true renderings are made once per process.
"""

import numpy as np

from bds_jax.data import datasets
from bds_jax.evaluation import gt_transfer
from bds_jax.evaluation.context import Context
from bds_jax.metrics import transfer

_PAIRS = {}  # (dataset split id, num_pairs, seed, lag, T) -> pairs and truths


def _pairs(ctx: Context, num_pairs: int, seed: int):
  seqs, lag, t = ctx.test_seqs, ctx.frame_lag, ctx.seq_len
  key = (seqs.name, seqs.split, len(seqs.lengths), num_pairs, seed, lag, t)
  if key not in _PAIRS:
    src, tgt = gt_transfer.pairs(seqs, num_pairs, seed + 6, lag * t + 1)
    _PAIRS[key] = gt_transfer.source_and_truth(seqs, src, tgt, lag, t)
  return _PAIRS[key]


def run(ctx: Context, *, num_pairs: int = 256, seed: int = 0):
  if (not datasets.get(ctx.config.data.name).true_renderings
      or ctx.test_seqs.onset_frames() is None
      or not len(gt_transfer.eligible_sources(ctx.test_seqs, ctx.frame_lag * ctx.seq_len + 1))):
    return
  source_m, start_m, truth_m, transition = _pairs(ctx, num_pairs, seed)
  own, moved = gt_transfer.reenact(ctx, source_m, start_m)
  static = gt_transfer.references(source_m, start_m)['static']
  self_mm = transfer.mpjpe_mm(own, source_m[:, 1:])['mean']
  self_static = transfer.mpjpe_mm(np.repeat(source_m[:, :1], ctx.seq_len, 1),
                                  source_m[:, 1:])['mean']
  yield 'self_mm', self_mm
  yield 'self_static_mm', self_static
  yield 'self_vs_static', self_mm / self_static
  direct = ~transition
  if direct.any():
    direct_mm = transfer.mpjpe_mm(moved[direct], truth_m[direct])['mean']
    static_mm = transfer.mpjpe_mm(static[direct], truth_m[direct])['mean']
    yield 'direct_mm', direct_mm
    yield 'direct_static_mm', static_mm
    yield 'direct_vs_static', direct_mm / static_mm
