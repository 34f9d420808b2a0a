"""The realism suite's train/held-out halves share no test sequence (issue 15).

Overlapping windows of one sequence are near-copies, so any sequence feeding both halves leaks
the held-out set into the classifier's training set.
"""

import types

import numpy as np
import pytest

from bds_jax.data import assembly
from bds_jax.data.normalization import Normalizer
from bds_jax.evaluation import context
from bds_jax.evaluation import realism
from bds_jax.evaluation import runner
from configs import evaluate as eval_configs


def test_split_puts_each_sequence_in_one_balanced_half():
  rng = np.random.default_rng(0)
  counts = rng.integers(50, 150, size=40)
  counts[[3, 17]] = 0  # too short for a window
  labels = np.arange(40) % 5
  half = realism.split_sequences(counts, labels, seed=1)
  assert set(half[[3, 17]]) == {-1} and set(np.delete(half, [3, 17])) == {0, 1}
  totals = [counts[half == h].sum() for h in (0, 1)]
  assert abs(totals[0] - totals[1]) <= counts.max()
  for label in range(5):  # every class in both halves, so both can pair for transfer
    assert set(half[(labels == label) & (counts > 0)]) == {0, 1}
  np.testing.assert_array_equal(half, realism.split_sequences(counts, labels, seed=1))
  assert not np.array_equal(half, realism.split_sequences(counts, labels, seed=2))


def test_draw_keeps_windows_and_pairs_in_their_sequences_half():
  counts = np.array([30, 5, 40, 0, 25, 35, 10, 20])
  labels = np.array([0, 0, 0, 0, 1, 1, 1, 2])
  d = realism.draw(counts, labels, num=301, seed=3)
  half = realism.split_sequences(counts, labels, seed=3)
  assert (d['half'] == 0).sum() == 150 and (d['half'] == 1).sum() == 151
  np.testing.assert_array_equal(half[d['seq']], d['half'])
  np.testing.assert_array_equal(half[d['paired_seq']], d['half'])
  assert (labels[d['paired_seq']] != labels[d['seq']]).all()
  for s, t in (('seq', 'start'), ('paired_seq', 'paired_start')):
    assert (d[t] >= 0).all() and (d[t] < counts[d[s]]).all()
  assert not set(d['seq'][d['half'] == 0]) & set(d['seq'][d['half'] == 1])
  with pytest.raises(ValueError, match='at least two test sequences'):
    realism.draw(np.array([30, 0]), np.array([0, 1]), num=10, seed=0)


def test_no_sequence_feeds_both_halves_through_the_suite(smoke_config, monkeypatch):
  """realism.run on the smoke test split, with a model stand-in that keeps provenance.

  Every frame of a window is tagged with its sequence (column 0); the stand-in encoder keeps a
  window's first frame as its code and the decoder emits [code, start, start, ...], so every
  generated sequence carries the sequences of its code (self, transfer) and its start posture
  (all kinds). Prior codes are tagged -1.
  """
  cfg = smoke_config
  seqs = assembly.load_split(cfg.data, cfg.data.eval_split)
  normalizer = Normalizer.fit(seqs.poses)
  test = assembly.make_windows(cfg.data, seqs, normalizer)
  ctx = context.Context('tagged', cfg, normalizer, test, test, batch_size=8,
                        sampler=types.SimpleNamespace(has_flow=True))
  assert ctx.priors == ('gaussian', 'flow')  # a stand-in flow, so the flow kind runs too

  def tagged_window(seq, start):
    frames = np.zeros((cfg.data.seq_len + 1, test.data[0].shape[-1]), np.float32)
    frames[:, 0] = seq
    return frames
  ctx.test.window = tagged_window
  ctx.posterior = lambda x: (x[:, 0], None)
  ctx.decode = lambda z, start: np.stack([z] + [start] * (cfg.data.seq_len - 1), axis=1)
  ctx.prior_codes = lambda n, key, prior: np.full((n, test.data[0].shape[-1]), -1, np.float32)
  seen = []

  def classifier(real_train, fake_train, real_test, fake_test, **unused):
    seen.append((real_train, fake_train, real_test, fake_test))
    return dict.fromkeys(('heldout_accuracy', 'heldout_auc', 'paper_mean_p_real_fake_train',
                          'heldout_mean_p_real_fake'), 0.5)
  monkeypatch.setattr(realism.probes, 'realism_classifier', classifier)
  out = runner.run_suite('realism', ctx, eval_configs.get_config('smoke'))

  def sources(x):
    return {int(t) for t in np.unique(x[..., 0])} - {-1}
  assert len(seen) == 4 and {'self', 'transfer', 'prior', 'flow'} <= set(out)
  for real_train, fake_train, real_test, fake_test in seen:
    assert len(real_train) + len(real_test) == out['num_windows'] == 64
    assert abs(len(real_train) - len(real_test)) <= 1
    train = sources(real_train) | sources(fake_train)
    heldout = sources(real_test) | sources(fake_test)
    assert len(train) >= 2 and len(heldout) >= 2
    assert not train & heldout, f'sequences in both halves: {sorted(train & heldout)}'
