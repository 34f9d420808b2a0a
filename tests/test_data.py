"""Windows, pairing, train-only normalization and the grain pipeline."""

import collections
import glob
import json
import os
import shutil

import numpy as np
import pytest

from bds_jax import errors
from bds_jax.data import pipeline
from bds_jax.data import sources
from bds_jax.data.normalization import Normalizer
from bds_jax.data.sources import SequenceSet
from bds_jax.data.windows import Windows


def _seqset(lengths, labels):
  rng = np.random.default_rng(0)
  poses = [rng.normal(size=(n, 17, 3)).astype(np.float32) for n in lengths]
  for p in poses:  # frame index in joint 0 x, to identify frames
    p[:, 0, 0] = np.arange(len(p))
  return SequenceSet(poses=poses, labels=np.array(labels), label_names=('a', 'b', 'c'),
                     subjects=np.zeros(len(lengths), int), subject_names=('S1',), extras={},
                     name='toy', split='train')


IDENTITY = Normalizer(np.zeros(51, np.float32), np.ones(51, np.float32))


def test_every_valid_start_once_and_no_end_oversampling():
  seqs = _seqset([30, 21, 20, 25], [0, 1, 2, 0])
  w = Windows(seqs, IDENTITY, seq_len=5, frame_lag=4)  # span 21 raw frames
  assert w.span == 21
  assert w.num_too_short == 1                 # the 20-frame sequence cannot hold a window
  assert len(w) == (30 - 20) + (21 - 20) + 0 + (25 - 20)
  seen = collections.Counter(w.locate(i) for i in range(len(w)))
  assert max(seen.values()) == 1
  expected = {(0, s) for s in range(10)} | {(1, 0)} | {(3, s) for s in range(5)}
  assert set(seen) == expected
  for i in range(len(w)):
    seq, start = w.locate(i)
    frames = w.item(i)['poses'][:, 0]
    np.testing.assert_array_equal(frames, start + 4 * np.arange(6))  # lag-4 frames, 6 of them
    assert frames[-1] < seqs.lengths[seq]
  with pytest.raises(IndexError):
    w.locate(len(w))


def test_pairs_have_another_class_and_cover_them_uniformly():
  seqs = _seqset([40, 40, 60, 40], [0, 1, 2, 1])
  w = Windows(seqs, IDENTITY, seq_len=5, frame_lag=2)
  rng = np.random.default_rng(1)
  counts = collections.Counter()
  for _ in range(3000):
    item = w.item(0, rng, paired=True)  # a class-0 window
    assert item['paired_label'] != item['label'] == 0
    counts[int(item['paired_seq'])] += 1
  # Uniform over windows of other classes: sequence 2 has 50 windows, 1 and 3 have 30 each.
  assert counts[0] == 0
  assert abs(counts[2] / 3000 - 50 / 110) < 0.04 and abs(counts[1] / 3000 - 30 / 110) < 0.04
  same = collections.Counter(w.random_same(1, rng)[0] for _ in range(2000))
  assert set(same) == {1, 3} and abs(same[1] / 2000 - 0.5) < 0.05


def test_single_class_pairs_with_any_window_and_short_data_is_an_error():
  # One class (a user's unlabelled motion, docs/own_mocap.md): no other class to pair with,
  # so a pair is any window, and training's re-enactment figure still has one.
  w = Windows(_seqset([40, 30], [0, 0]), IDENTITY, 5, 2)
  assert w.num_classes == 1
  pairs = {int(w.item(0, np.random.default_rng(s), paired=True)['paired_seq']) for s in range(20)}
  assert pairs == {0, 1}
  with pytest.raises(ValueError, match='no window of any other class'):
    w.random_other(1, np.random.default_rng(0))  # a class the set does not hold
  with pytest.raises(ValueError, match='long enough for a window of 51 frames'):
    Windows(_seqset([60], [0]), IDENTITY, 50, 2)


def test_normalizer_round_trip_and_file_errors(tmp_path):
  seqs = _seqset([30, 40], [0, 1])
  norm = Normalizer.fit(seqs.poses)
  flat = np.concatenate([p.reshape(len(p), -1) for p in seqs.poses])
  np.testing.assert_allclose(norm.normalize(np.concatenate(seqs.poses)).mean(0), 0, atol=1e-4)
  np.testing.assert_allclose(norm.normalize(np.concatenate(seqs.poses)).std(0), 1, atol=1e-4)
  np.testing.assert_allclose(norm.denormalize(norm.normalize(seqs.poses[0])), seqs.poses[0],
                             atol=1e-4)
  path = str(tmp_path / 'n.json')
  norm.save(path)
  loaded = Normalizer.load(path)
  np.testing.assert_array_equal(loaded.mean, norm.mean)
  assert flat.shape[1] == 51
  with open(path, 'w') as f:
    json.dump({'mean': [0.0] * 50, 'std': [1.0] * 50}, f)
  with pytest.raises(ValueError, match='n.json.*51 values'):
    Normalizer.load(path)
  with open(path, 'w') as f:
    f.write('{not json')
  with pytest.raises(ValueError, match='n.json is not valid JSON'):
    Normalizer.load(path)
  with pytest.raises(FileNotFoundError, match='missing.json'):
    Normalizer.load(str(tmp_path / 'missing.json'))


def test_synthetic_dataset_loads_and_normalization_uses_train_only(data_dir):
  train = sources.load_sequences('synthetic_motion', 'train', data_dir, 'small', 'never')
  test = sources.load_sequences('synthetic_motion', 'test', data_dir, 'small', 'never')
  assert set(train.subject_names[s] for s in train.subjects) == {'S1', 'S5', 'S6', 'S7', 'S8'}
  assert set(test.subject_names[s] for s in test.subjects) == {'S9', 'S11'}
  assert train.label_names[0] == 'raise_right_arm' and 'posture' in train.extras
  norm = Normalizer.fit(train.poses)
  train_frames = np.concatenate(train.poses).reshape(-1, 51).astype(np.float64)
  np.testing.assert_allclose(norm.mean, train_frames.mean(0), atol=1e-5)
  both = Normalizer.fit(train.poses + test.poses)
  assert not np.allclose(norm.std, both.std)  # the test subjects would change the scaling
  with pytest.raises(ValueError, match="Split 'validation' is not in dataset"):
    sources.load_sequences('synthetic_motion', 'validation', data_dir, 'small', 'never')
  with pytest.raises(ValueError, match="data.name='h37m'"):
    sources.load_sequences('h37m', 'train', data_dir)
  with pytest.raises(ValueError, match="builder_config='huge'.*small"):
    sources.load_sequences('synthetic_motion', 'train', data_dir, 'huge')


def _take(it, n):
  return [next(it) for _ in range(n)]


def test_pipeline_is_deterministic_restorable_and_sharded():
  seqs = _seqset([40, 50, 45, 60], [0, 1, 2, 1])
  w = Windows(seqs, IDENTITY, seq_len=5, frame_lag=2)
  make = lambda: iter(pipeline.train_dataset(w, 4, seed=3, paired=True, shard_index=0,
                                             shard_count=1))
  a = _take(make(), 5)
  it = make()
  _take(it, 2)
  state = it.get_state()
  rest = _take(it, 3)
  it2 = make()
  it2.set_state(state)
  for x, y in zip(rest, _take(it2, 3)):
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])
  for x, y in zip(a[2:], rest):
    np.testing.assert_array_equal(x['poses'], y['poses'])
  assert a[0]['poses'].shape == (4, 6, 51) and a[0]['paired_poses'].shape == (4, 6, 51)
  assert np.all(a[0]['paired_label'] != a[0]['label'])
  # One epoch = every window exactly once; the next epoch is a different order.
  epoch = len(w) // 4
  it = make()
  batches = _take(it, 2 * epoch)
  first = [(s, t) for b in batches[:epoch] for s, t in zip(b['seq'], b['start'])]
  assert len(set(first)) == len(first) == epoch * 4
  second = [(s, t) for b in batches[epoch:] for s, t in zip(b['seq'], b['start'])]
  assert first != second
  # Two processes see disjoint windows.
  shards = [{(int(s), int(t)) for b in _take(iter(pipeline.train_dataset(
      w, 4, seed=3, shard_index=i, shard_count=2)), len(w) // 8)
             for s, t in zip(b['seq'], b['start'])} for i in range(2)]
  assert not shards[0] & shards[1]


@pytest.mark.parametrize('damage', ['cut', 'empty'])
def test_a_damaged_shard_is_one_error_naming_the_dataset_and_the_fix(data_dir, tmp_path,
                                                                      damage):
  copy = tmp_path / 'tfds'
  shutil.copytree(data_dir, copy)
  shards = sorted(glob.glob(str(copy / 'synthetic_motion' / '*' / '*' / '*-train.array_record*')))
  assert shards
  with open(shards[0], 'r+b') as f:
    f.truncate(os.path.getsize(shards[0]) // 3 if damage == 'cut' else 0)
  with pytest.raises(errors.InputError, match=r'synthetic_motion/train: cannot read the prepared '
                                              r'dataset in .*a shard is damaged or cut short.*'
                                              r'rm -r .*synthetic_motion'):
    sources.load_sequences('synthetic_motion', 'train', str(copy), 'small', 'never')
