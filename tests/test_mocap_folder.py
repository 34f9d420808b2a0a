"""The mocap_folder dataset (a user's folder of BVH files, docs/own_mocap.md): classes from
folders, the file and subject splits, bad files skipped in one line each and counted,
mocap.json mistakes in one line, unlabelled folders (the transfer suite says it needs classes),
and a smoke run of train.py and evaluate.py (transfer and HMP suites) on a folder of BVH files."""

import json
import logging
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from bds_jax import errors
from bds_jax import procedural
from bds_jax.data import sources
from bds_jax.data.normalization import Normalizer
from bds_jax.data.windows import Windows
from bds_jax.evaluation import realism
from bds_jax.evaluation import transfer
from configs import behavior
from bvh_files import CMU, MIXAMO, rest_pose, write_bvh  # pylint: disable=g-bad-import-order
from tfds_builders.mocap_folder import build as build_lib
from tfds_builders.mocap_folder import folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMES = 160  # 3.2 s at 50 Hz: room for the HMP protocol's 125-frame windows
# Two classes (synthetic behaviors) of three takes each, by three subjects, in two rigs (CMU
# and Mixamo joint names), centimetres, y up, 30 Hz.
CLASSES = ('wave', 'squat')
SUBJECTS = ('S1', 'S5', 'S9')
SMOKE_FIELDS = ('data.batch_size', 'data.seq_len', 'data.frame_lag', 'model.width',
                'model.regressor_widths', 'model.regressor_time_width', 'loss.regressor_steps',
                'loss.info_budget', 'loss.gamma_step', 'optim.lr', 'optim.lr_milestones')


def _write_takes(root, classes=True):
  for cls in CLASSES:
    for k, subject in enumerate(SUBJECTS):
      poses = procedural.render(subject, 'standing', cls, k, k, FRAMES).astype(np.float64)
      name = f'{cls}/{subject}_take{k}.bvh' if classes else f'{cls}_{subject}_take{k}.bvh'
      os.makedirs(os.path.dirname(root / name), exist_ok=True)
      write_bvh(root / name, poses, rest_pose(subject), MIXAMO if k % 2 else CMU, 0.01, 'y',
                30.0)


@pytest.fixture(scope='module')
def mocap_dir(tmp_path_factory):
  """A class-per-folder folder of six good takes, two bad files and a file that is not motion."""
  root = tmp_path_factory.mktemp('my_mocap')
  _write_takes(root)
  good = (root / 'wave' / 'S1_take0.bvh').read_text()
  (root / 'wave' / 'cut.bvh').write_text(good[:len(good) // 2])  # truncated
  lines = good.splitlines()
  lines[-3] = ' '.join(['nan'] + lines[-3].split()[1:])
  (root / 'squat' / 'nan.bvh').write_text('\n'.join(lines) + '\n')
  (root / 'squat' / 'notes.txt').write_text('not motion')
  (root / folder.OPTIONS_FILE).write_text(json.dumps({'test_fraction': 0.3}))
  return root


@pytest.fixture(scope='module')
def built(mocap_dir, tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp('mocap_tfds'))
  train = sources.load_sequences('mocap_folder', 'train', data_dir, manual_dir=str(mocap_dir))
  test = sources.load_sequences('mocap_folder', 'test', data_dir, manual_dir=str(mocap_dir))
  return data_dir, train, test


def test_classes_splits_and_bad_files(mocap_dir, built, tmp_path, caplog):
  data_dir, train, test = built
  assert train.label_names == ('squat', 'wave') and train.subject_names == ('unknown',)
  files = {s: set(seqs.extras['source_file']) for s, seqs in (('train', train), ('test', test))}
  assert not files['train'] & files['test'] and len(files['train'] | files['test']) == 6
  # Every class of two or more files has a test file; the split is fixed by the names alone.
  assert set(test.labels) == {0, 1} and len(train) >= 2
  for seqs in (train, test):
    for poses, label, name in zip(seqs.poses, seqs.labels, seqs.extras['source_file']):
      assert name.startswith(seqs.label_names[label] + '/') and poses.shape == (FRAMES - 1, 17, 3)
      assert 1.4 < poses[0, 10, 2] < 2.0 and abs(poses[:, (3, 6), 2].min()) < 1e-4  # metres, z up
  builder = sources.get_builder('mocap_folder', data_dir)
  skipped = {s['source_file']: s['reason'] for s in builder.info.metadata['skipped_files']}
  assert skipped.keys() == {'wave/cut.bvh', 'squat/nan.bvh'}
  assert 'declares 96 frames but holds 46 (a truncated' in skipped['wave/cut.bvh']
  assert 'contains NaN or inf' in skipped['squat/nan.bvh']
  assert all(str(mocap_dir) in r and '\n' not in r for r in skipped.values())
  text = build_lib.summary(builder)  # python -m tfds_builders.mocap_folder.build
  for split, seqs in (('train', train), ('test', test)):
    per_class = ', '.join(f'{name} {int(np.sum(seqs.labels == i))}'
                          for i, name in enumerate(seqs.label_names))
    minutes = seqs.lengths.sum() / 50 / 60
    assert f'{split}: {len(seqs)} sequences, {minutes:.1f} min; {per_class}' in text
  assert '2 bad file(s) skipped:\n' in text and 'nan.bvh: contains NaN or inf' in text
  # A built dataset is another folder's: refused; the folder changed: a warning.
  with pytest.raises(errors.ConfigError, match=r'built from .*my_mocap.*not from .*elsewhere'):
    sources.load_sequences('mocap_folder', 'test', data_dir,
                           manual_dir=str(tmp_path / 'elsewhere'))
  (mocap_dir / 'squat' / 'late.bvh').write_text('')
  try:
    with caplog.at_level(logging.WARNING):
      sources.load_sequences('mocap_folder', 'test', data_dir, manual_dir=str(mocap_dir))
    assert 'changed (files or mocap.json) since the dataset' in caplog.text
  finally:
    os.remove(mocap_dir / 'squat' / 'late.bvh')


def test_bad_files_fail_when_asked_or_when_nothing_is_left(tmp_path, caplog):
  root = tmp_path / 'bad'
  (root / 'a').mkdir(parents=True)
  (root / 'b').mkdir()
  for name in ('a/1.bvh', 'a/2.bvh', 'b/1.bvh', 'b/2.bvh'):
    (root / name).write_text('HIERARCHY\n')
  with pytest.raises(errors.InputError, match=r'no usable file in the train split \(2 file\(s\) '
                                              r'there, 2 bad file\(s\) skipped'):
    with caplog.at_level(logging.WARNING):
      sources.load_sequences('mocap_folder', 'train', str(tmp_path / 'd1'), manual_dir=str(root))
  assert 'mocap_folder/train: 2 of its 2 files skipped as bad' in caplog.text
  (root / folder.OPTIONS_FILE).write_text('{"on_bad_file": "fail"}')
  with pytest.raises(errors.InputError, match=r'bad/./.\.bvh: no complete MOTION section'):
    sources.load_sequences('mocap_folder', 'train', str(tmp_path / 'd2'), manual_dir=str(root))


def _entries(root, options: dict):
  (root / folder.OPTIONS_FILE).write_text(json.dumps(options))
  return folder.entries(str(root), folder.read_options(str(root)))[0]


def test_options_subject_split_and_layout_errors(tmp_path):
  root = tmp_path / 'takes'
  for name in ('walk/S1_a.bvh', 'walk/S2_a.bvh', 'walk/S3_b.bvh', 'run/S1_c.bvh', 'run/S3_d.bvh'):
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text('')
  got = _entries(root, {'split': 'subject', 'subject_pattern': r'(S\d+)_', 'test_subjects': ['S3']})
  assert [(e.path, e.label, e.subject, e.test) for e in got] == [
      ('run/S1_c.bvh', 'run', 'S1', False), ('run/S3_d.bvh', 'run', 'S3', True),
      ('walk/S1_a.bvh', 'walk', 'S1', False), ('walk/S2_a.bvh', 'walk', 'S2', False),
      ('walk/S3_b.bvh', 'walk', 'S3', True)]
  # Classes by a pattern; by file, every class of two files gets one test file.
  got = _entries(root, {'labels': r'_(\w)\.bvh$'})
  assert sorted({e.label for e in got}) == ['a', 'b', 'c', 'd']
  got = _entries(root, {})
  assert {e.label for e in got if e.test} == {'run', 'walk'}
  for options, message in (
      ({'test_fration': 0.2}, r'unknown option\(s\) test_fration; the options are format'),
      ({'split': 'subject'}, r'split "subject" needs subject_pattern'),
      ({'split': 'subject', 'subject_pattern': r'(S\d+)', 'test_subjects': ['S9']},
       r'test_subjects S9 match no file; the subject_pattern finds S1, S2, S3'),
      ({'labels': '(a)(b)'}, r'has 2 groups'),
      ({'labels': r'_(\w)_'}, r'names no class in 5 file path\(s\), e.g. run/S1_c.bvh'),
      ({'units': 'furlongs'}, r'units \'furlongs\': expected auto, m, cm'),
      ({'test_fraction': 1.5}, r'test_fraction 1.5: expected a number between 0 and 1'),
      ({'joint_map': {'knee': 'Knee'}}, r'mocap.json: joint map: unknown joint names knee')):
    with pytest.raises(errors.InputError, match=message) as e:
      _entries(root, options)
    assert '\n' not in str(e.value)
  (root / folder.OPTIONS_FILE).write_text('{"split": ')
  with pytest.raises(errors.InputError, match=r'mocap.json: not valid JSON'):
    folder.read_options(str(root))
  (root / 'loose.bvh').write_text('')
  with pytest.raises(errors.InputError, match=r'1 file\(s\) \(e.g. loose.bvh\) sit directly in '
                                              r'the folder while others sit in class folders'):
    _entries(root, {})


def test_unlabelled_folder_trains_and_transfer_says_it_needs_classes(tmp_path):
  _write_takes(tmp_path / 'flat', classes=False)
  seqs = {s: sources.load_sequences('mocap_folder', s, str(tmp_path / 'd'),
                                    manual_dir=str(tmp_path / 'flat')) for s in ('train', 'test')}
  assert seqs['train'].label_names == ('unlabelled',)
  norm = Normalizer(np.zeros(51, np.float32), np.ones(51, np.float32))
  windows = {s: Windows(v, norm, seq_len=10, frame_lag=4) for s, v in seqs.items()}
  # Training's transfer pairs (its re-enactment figure) come from any window.
  item = windows['train'].item(0, np.random.default_rng(0), paired=True)
  assert item['paired_poses'].shape == (11, 51)
  ctx = types.SimpleNamespace(train=windows['train'], test=windows['test'])
  results = dict(transfer.run(ctx, seed=0, num_windows=4, train_windows=4, probe_steps=1,
                              classifier_steps=1))
  assert results.keys() == {'skipped'}
  assert ("needs at least two classes (it pairs windows of different classes and probes the code "
          "for the class), but every window of mocap_folder/train is of class 'unlabelled'"
          in results['skipped'])
  assert 'skipped (the transfer suite needs at least two classes' in transfer.table(
      {'ours': results}, 'mocap_folder')
  # Realism's transfer kind takes its start posture from any window.
  w = windows['train']
  assert len(realism.draw(w.counts, w.labels, 8, 0)['paired_seq']) == 8


def _cli(script, *args):
  return subprocess.run([sys.executable, script, *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS='cpu'))


def _smoke_values() -> list[str]:
  """The :smoke preset's model, data and loss sizes as --config overrides: the same programs
  as the session's other smoke runs, so they come from its compilation cache (conftest.py)."""
  smoke, out = behavior.get_config('smoke'), []
  for field in SMOKE_FIELDS:
    value = smoke
    for part in field.split('.'):
      value = value[part]
    if isinstance(value, tuple):
      value = ','.join(str(v) for v in value) or '()'
    out.append(f'--config.{field}={value}')
  return out


def test_train_and_evaluate_on_a_folder_of_bvh_files(mocap_dir, built, tmp_path):
  """train.py and evaluate.py (transfer and HMP suites) with the :mocap preset at smoke size."""
  data_dir, _, _ = built
  config = ['--config=configs/behavior.py:mocap', f'--config.data.data_dir={data_dir}',
            f'--config.data.manual_dir={mocap_dir}', *_smoke_values()]
  workdir = str(tmp_path / 'run')
  out = _cli('train.py', *config, f'--workdir={workdir}', '--config.num_steps=6',
             '--config.eval_batches=1', '--config.final_gif=false',
             '--config.progress_bar=false')
  assert out.returncode == 0, out.stderr[-3000:]
  # The :smoke eval sizes, as test_evaluate.py's, for the same reason.
  out = _cli('evaluate.py', *config, f'--workdir={workdir}',
             '--eval_config=configs/evaluate.py:smoke', '--eval_config.suites=transfer,hmp',
             '--report=false')
  assert out.returncode == 0, out.stderr[-3000:]
  with open(os.path.join(workdir, 'eval', 'results.json')) as f:
    results = json.load(f)
  assert results['dataset'] == 'mocap_folder'
  suites = results['runs']['ours']['suites']
  assert 0 <= suites['transfer']['acc'] <= 1 and np.isfinite(suites['transfer']['TDE']['1'])
  assert suites['hmp']['num_windows'] > 0 and np.isfinite(suites['hmp']['gaussian']['ADE'])
  assert 'data: mocap_folder, not Human3.6M' in suites['hmp']['protocol_differences']
