"""synthesize.py: every subcommand's output (frames, size, fps), pose files, clear errors, and
the run's index.html (valid HTML, links that resolve, loads in headless Chromium)."""

import json
import os
import re
import shutil
import subprocess
import sys

import imageio.v2 as iio2
import jax
import numpy as np
import pytest
from flax import nnx

from bds_jax import errors
from bds_jax import runs
from bds_jax import procedural
from bds_jax.models import build
from bds_jax.synthesis import commands
from bds_jax.synthesis import rgb
from bds_jax.viz import report_page
from bds_jax.evaluation import runner
from configs import appearance as appearance_config
from configs import behavior as behavior_configs
from configs import evaluate as eval_configs
from configs import flow as flow_configs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTIFACTS = os.environ.get('BDS_TEST_ARTIFACTS', os.path.join(ROOT, 'test-artifacts'))
UMAP_POINTS = 320  # above the 300 hover clips per set
pytestmark = pytest.mark.filterwarnings(r'ignore:os\.fork\(\) was called')  # ffmpeg subprocess


@pytest.fixture(scope='module')
def run_dir(behavior_workdir, tmp_path_factory):
  """A copy of the session's smoke behavior run with a (briefly trained) flow in flow/."""
  from bds_jax.train import flow as flow_trainer  # pylint: disable=g-import-not-at-top
  path = str(tmp_path_factory.mktemp('synth') / 'run')
  shutil.copytree(behavior_workdir, path, ignore=shutil.ignore_patterns('train.lock'))
  c = flow_configs.get_config('smoke')
  c.behavior_workdir = path
  c.num_steps = 4
  c.final_gif = False
  flow_trainer.train_and_evaluate(c, os.path.join(path, 'flow'))
  return path


@pytest.fixture(scope='module')
def appearance_dir(tmp_path_factory):
  """An untrained 64 px smoke appearance model on synthetic_people `small`, saved as a run."""
  from bds_jax.data import sources  # pylint: disable=g-import-not-at-top
  d = str(tmp_path_factory.mktemp('tfds_people'))
  sources.get_builder('synthetic_people', d, 'small').download_and_prepare()
  c = appearance_config.get_config('smoke')
  c.data.data_dir, c.data.prepare = d, 'never'
  model, reg = build.create_appearance(c, jax.random.key(0, impl='rbg'))
  run = runs.Run(str(tmp_path_factory.mktemp('appearance_run')))
  run.write_config(c)
  ckpt = run.checkpointer()
  ckpt.save(3, {'params': nnx.to_pure_dict(nnx.split(model)[1]),
                'reg': nnx.to_pure_dict(nnx.split(reg)[1])})
  ckpt.close()
  return run.path


def _video(path):
  reader = iio2.get_reader(path)
  meta = reader.get_meta_data()
  frames = reader.count_frames()
  first = reader.get_data(0)
  reader.close()
  return frames, first.shape, meta['fps']


def _settings(run_dir, **kw):
  return dict(workdir=run_dir, **kw)


def _clip(run_dir, behaviors=1):
  """(frames, fps) of `behaviors` chained model windows of the run."""
  d = runs.Run(run_dir).config.data
  return behaviors * d.seq_len + 1, 50.0 / d.frame_lag


@pytest.mark.parametrize('command, kw, behaviors, grid', [
    ('transfer', dict(num=2), 1, (3, 3)),
    ('sample', dict(num=2, target='test:0'), 1, (2, 2)),
    ('loop', dict(num_behaviors=2), 2, (1, 1)),
    ('interpolate', dict(source='test:0,5', steps=3), 1, (2, 3)),
    ('neighbours', dict(k=3), 1, (3, 3)),
])
def test_pose_subcommands_write_videos(run_dir, command, kw, behaviors, grid):
  s = _settings(run_dir, name=f't_{command}', **kw)
  entry = commands.run(command, **s)
  out = os.path.join(run_dir, 'synthesis')
  n, shape, fps = _video(os.path.join(out, entry['video']))
  assert (n, fps) == _clip(run_dir, behaviors) and entry['frames'] == n
  # Panels are 2.6 in at 100 dpi, plus title and counter rows: the size follows the grid.
  rows, cols = grid
  assert shape[1] == entry['size'][0] == pytest.approx(260 * cols, abs=2)
  assert shape[0] == pytest.approx(260 * rows + 85, abs=2)
  assert os.path.exists(os.path.join(out, entry['still']))
  manifest = json.load(open(os.path.join(out, 'manifest.json')))
  assert [e['name'] for e in manifest].count(f't_{command}') == 1


def test_neighbours_reports_class_agreement(run_dir):
  entry = commands.run('neighbours', **_settings(run_dir, k=2, name='nb', format='gif', points=40))
  stats = entry['stats']
  for space in ('behavior space (μ)', 'posture space (start pose)'):
    assert 0.0 <= stats[f'this re-enactment, {space}: share with the source class'] <= 1.0
    assert len(stats[f'this re-enactment, {space}: windows']) == 2
  # Averaged over many re-enactments, and the caption prints the very numbers of the stats.
  assert stats['re-enactments'] == 40
  share = stats['re-enactments, behavior space (μ): share with the source class']
  assert f'Over 40 re-enactments' in entry['caption']
  assert f'{100 * share:.0f}% of the 2 μ-neighbours' in entry['caption']
  assert entry['video'] == 'nb.gif'


def test_umap_png_and_interactive_html(run_dir, report):
  entry = report['umap']
  out = os.path.join(run_dir, 'synthesis')
  page = open(os.path.join(out, entry['html'])).read()
  data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', page,
                              re.S).group(1))
  assert {p['s'] for p in data['points']} == {'posterior μ', 'flow samples', 'N(0, I) samples'}
  # As many points as asked for, in every set; hover clips on a bounded subset only.
  for name in ('posterior μ', 'flow samples', 'N(0, I) samples'):
    assert sum(p['s'] == name for p in data['points']) == UMAP_POINTS, name
    assert sum(p['s'] == name and 'c' in p for p in data['points']) == min(UMAP_POINTS, 300)
  assert len(data['points']) == entry['points'] == 3 * UMAP_POINTS
  assert 'src=' not in page.split('<script id="data"')[0]
  assert os.path.getsize(os.path.join(out, entry['still'])) > 10_000
  # The caption's numbers are the stats' numbers.
  stats = entry['stats']
  assert stats['test windows'] == UMAP_POINTS and f'{3 * UMAP_POINTS} codes' in entry['caption']
  for key in ('k-NN class purity, behavior space (μ)', 'k-NN class purity, start-pose space'):
    assert 0.0 <= stats[key] <= 1.0 and f'{100 * stats[key]:.0f}%' in entry['caption']


def test_pose_file_as_source(run_dir, tmp_path):
  d = runs.Run(run_dir).config.data
  poses = procedural.render('S9', 'standing', 'wave', 1, 2, 120)[::d.frame_lag][:d.seq_len + 3]
  np.save(tmp_path / 'mine.npy', poses)
  entry = commands.run('transfer', **_settings(run_dir, source=str(tmp_path / 'mine.npy'), num=1,
                                             name='from_file'))
  assert entry['frames'] == _clip(run_dir)[0]


@pytest.mark.parametrize('kw, message', [
    (dict(source='test:999999'), r'window index 999999 is out of range for synthetic_motion/test'),
    (dict(source='test:abc'), r"--source='test:abc': expected <split>:<i>,<j>"),
    (dict(source='valid:0'), r"Split 'valid'|valid"),
    (dict(num=0), r'--num=0 must be at least 1'),
])
def test_bad_selections_are_clear_errors(run_dir, kw, message):
  with pytest.raises((ValueError, FileNotFoundError), match=message):
    commands.run('transfer', **_settings(run_dir, **kw))


def test_bad_pose_files_are_clear_errors(run_dir, tmp_path):
  assert _clip(run_dir)[0] == 11  # the smoke model's window
  bad = {'joints.npy': np.zeros((60, 16, 3), np.float32),
         'short.npy': np.zeros((10, 17, 3), np.float32)}
  nan = np.zeros((60, 17, 3), np.float32)
  nan[3, 5, 1] = np.nan
  bad['nan.npy'] = nan
  for name, array in bad.items():
    np.save(tmp_path / name, array)
  np.save(tmp_path / 'obj.npy', np.array([{'a': 1}], dtype=object), allow_pickle=True)
  d = runs.Run(run_dir).config.data
  body = procedural.render('S9', 'standing', 'wave', 1, 2, 120)[::d.frame_lag][:20]
  np.save(tmp_path / 'huge.npy', np.full((20, 17, 3), 1e30, np.float32))
  np.save(tmp_path / 'huge64.npy', np.full((20, 17, 3), 1e300, np.float64))
  np.save(tmp_path / 'mm.npy', body * 1000.0)      # millimetres
  np.save(tmp_path / 'tiny.npy', body / 100.0)     # a body 2 cm tall
  np.save(tmp_path / 'empty.npy', np.zeros((0, 20, 17, 3), np.float32))
  os.makedirs(tmp_path / 'folder.npy')
  for name, message in (('joints.npy', r'joints.npy: poses must have shape \(T, 17, 3\)'),
                        ('short.npy', r'short.npy: 10 frames per clip, need at least 11'),
                        ('nan.npy', r'nan.npy: contains NaN or inf \(first at clip 0, frame 3, '
                                    r'joint 5\)'),
                        ('obj.npy', r'obj.npy: not a plain NumPy array'),
                        ('huge.npy', r'huge.npy: coordinates reach 1e\+30; poses must be in '
                                     r'metres'),
                        ('huge64.npy', r'huge64.npy: coordinates reach 1e\+300'),
                        ('mm.npy', r'mm.npy: coordinates reach .*millimetres'),
                        ('tiny.npy', r'tiny.npy: the longest bone is 0.00\d+ long .* 0.1 to '
                                     r'1 m'),
                        ('empty.npy', r'empty.npy: holds 0 clips'),
                        ('folder.npy', r'folder.npy is a directory'),
                        ('missing.npy', r'missing.npy: pose file not found')):
    with pytest.raises((errors.InputError, FileNotFoundError), match=message):
      commands.run('transfer', **_settings(run_dir, source=str(tmp_path / name)))


def test_video_renders_rgb_with_the_appearance_model(run_dir, report):
  entry = report['video']
  n, shape, fps = _video(os.path.join(run_dir, 'synthesis', entry['video']))
  assert (n, fps) == _clip(run_dir)
  assert shape[1] == pytest.approx(260 * 6, abs=2)  # source, frame, 3D, stickmen, synth, truth
  assert shape[0] == pytest.approx(260 * 2 + 85, abs=2)  # two target frames
  assert 0.0 < entry['stats']['ssim_to_truth'] <= 1.0
  assert entry['appearance_step'] == 3


def test_video_errors(run_dir, appearance_dir):
  with pytest.raises(errors.InputError, match='video needs --appearance_workdir'):
    commands.run('video', **_settings(run_dir))
  with pytest.raises(errors.InputError, match=r'frame index 500 is out of range for '
                                              r'synthetic_people/test'):
    commands.run('video', **_settings(run_dir, appearance_workdir=appearance_dir,
                                    target='test:500'))
  run = runs.Run(appearance_dir)
  image_set = type('S', (), {'image_size': 128, 'name': 'synthetic_people', 'split': 'test',
                             'extras': {}})()
  with pytest.raises(errors.InputError, match=r'trained at 64 px, but synthetic_people \(test\) '
                                              r'has 128 px frames'):
    rgb.check_images(image_set, run.config.model.image_size, run.path)


def test_missing_or_corrupt_checkpoint_is_a_clear_error(run_dir, tmp_path):
  broken = str(tmp_path / 'broken')
  shutil.copytree(run_dir, broken, ignore=shutil.ignore_patterns('flow'))
  step_dirs = os.path.join(broken, 'checkpoints')
  for step in os.listdir(step_dirs):
    shutil.rmtree(os.path.join(step_dirs, step))
  with pytest.raises(FileNotFoundError, match='holds no checkpoint yet'):
    commands.run('transfer', **_settings(broken))
  with pytest.raises(FileNotFoundError, match='not a bds_jax training run'):
    commands.run('transfer', **_settings(str(tmp_path / 'nowhere')))
  # Damaged run files are user errors (one line from the entry points, no traceback).
  damaged = str(tmp_path / 'damaged')
  shutil.copytree(run_dir, damaged, ignore=shutil.ignore_patterns('flow'))
  with open(os.path.join(damaged, 'normalization.json'), 'w') as f:
    f.write('{"mean": [0.0')
  with pytest.raises(errors.InputError, match=r'normalization.json is not valid JSON'):
    commands.run('transfer', **_settings(damaged))
  with open(os.path.join(damaged, 'config.json'), 'w') as f:
    f.write('{"trainer": ')
  with pytest.raises(errors.InputError, match=r'config.json is not valid JSON'):
    commands.run('transfer', **_settings(damaged))


def _cli(*args):
  return subprocess.run([sys.executable, 'synthesize.py', *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS='cpu'))


def test_cli_writes_the_report_and_errors_are_one_line(run_dir):
  out = _cli('loop', f'--workdir={run_dir}', '--num_behaviors=1', '--name=cli')
  assert out.returncode == 0, out.stderr[-3000:]
  assert f'Report: {os.path.join(run_dir, "index.html")}' in out.stdout
  assert os.path.exists(os.path.join(run_dir, 'synthesis', 'cli.mp4'))
  bad = _cli('dance', f'--workdir={run_dir}')
  assert bad.returncode != 0 and "Unknown subcommand 'dance'" in bad.stderr
  assert 'Traceback' not in bad.stderr
  other = _cli('transfer', f'--workdir={run_dir}', '--samples=3')  # predict's flag
  assert other.returncode == 2 and "Unknown command line flag 'samples'" in other.stderr
  nosuch = _cli('transfer', f'--workdir={run_dir}', '--source=nosuch:1')
  assert nosuch.returncode != 0 and 'Traceback' not in nosuch.stderr, nosuch.stderr[-3000:]
  assert "Split 'nosuch' is not in dataset synthetic_motion" in nosuch.stderr
  # Every input error is a UserError: entry points print it as one line, no traceback.
  assert issubclass(errors.InputError, errors.UserError)


@pytest.fixture(scope='module')
def report(run_dir, appearance_dir):
  """Everything the report can show: results of several subcommands, the RGB video included;
  then index.html."""
  entries = {
      'transfer': commands.run('transfer', **_settings(run_dir, num=1)),
      'video': commands.run('video', **_settings(run_dir, appearance_workdir=appearance_dir,
                                               target='test:0,9')),
      'umap': commands.run('umap', **_settings(run_dir, points=UMAP_POINTS)),
  }
  eval_config = eval_configs.get_config('smoke')
  eval_config.suites = 'diversity'
  runner.evaluate(behavior_configs.get_config('smoke'), eval_config, run_dir)  # -> <run>/eval
  entries['path'] = report_page.write(run_dir)
  return entries


def test_report_is_valid_html_with_links_that_resolve(run_dir, report):
  import html5lib  # pylint: disable=g-import-not-at-top
  text = open(report['path']).read()
  html5lib.HTMLParser(strict=True).parse(text)  # raises on any parse error
  links = re.findall(r'(?:src|href|poster)="([^"#]+)"', text)
  assert links and not [u for u in links if re.match(r'[a-z]+:', u)]  # relative, no CDN
  missing = [u for u in links if not os.path.exists(os.path.join(run_dir, u))]
  assert not missing, missing
  for needed in ('synthesis/transfer.mp4', 'synthesis/video.mp4', 'synthesis/umap.html',
                 'report/curves_behavior.png'):
    assert needed in links, needed
  assert 'RGB re-enactment' in text and 'Behavior transfer' in text
  assert '<h3>Diversity (paper Tables 2 and 4)</h3>' in text and '<td>flow</td>' in text
  # Numbers are tables with Unicode as it is, not JSON dumps with escapes.
  assert '<table class="kv stats"><tr><th>test windows</th><td>320</td>' in text
  assert 'k-NN class purity, behavior space (μ)' in text and '\\u03bc' not in text


def test_report_in_headless_chromium(report):
  browser = shutil.which('chromium') or shutil.which('chromium-browser')
  try:
    from playwright.sync_api import sync_playwright  # pylint: disable=g-import-not-at-top
  except ImportError:
    pytest.skip('playwright is not installed (pip install -r tests/requirements.txt)')
  if not browser:
    pytest.skip('no Chromium here (.ci/run installs Debian\'s chromium package)')
  path = report['path']
  problems = []
  with sync_playwright() as p:
    b = p.chromium.launch(executable_path=browser, args=['--no-sandbox'])
    page = b.new_page(viewport={'width': 1300, 'height': 1000})
    page.on('console', lambda m: problems.append(m.text) if m.type == 'error' else None)
    page.on('pageerror', lambda e: problems.append(str(e)))
    page.on('requestfailed', lambda r: problems.append(f'failed: {r.url}'))
    page.goto(f'file://{path}', wait_until='load')
    page.wait_for_function('[...document.querySelectorAll("video")].every(v => v.readyState >= 2)',
                           timeout=20000)
    media = page.evaluate('''() => ({
        videos: [...document.querySelectorAll('video')].map(v => [v.videoWidth, !!v.error]),
        images: [...document.querySelectorAll('img')].map(i => [i.complete, i.naturalWidth])})''')
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, 'report.png'), full_page=True)
    b.close()
  assert not problems, problems
  assert media['videos'] and all(w > 0 and not err for w, err in media['videos'])
  assert media['images'] and all(ok and w > 0 for ok, w in media['images'])
  assert os.path.getsize(os.path.join(ARTIFACTS, 'report.png')) > 50_000


def test_auto_sources_start_at_the_behavior_onset():
  from bds_jax.data.normalization import Normalizer
  from bds_jax.data.sources import SequenceSet
  from bds_jax.data.windows import Windows
  from bds_jax.synthesis import inputs
  rng = np.random.default_rng(0)
  poses = [rng.normal(size=(300, 17, 3)).astype(np.float32) for _ in range(4)]
  onset_s = np.array([1.3, 0.0, 2.02, 0.5])  # seconds, as synthetic_motion stores it
  seqs = SequenceSet(poses, np.arange(4), ('a', 'b', 'c', 'd'), np.zeros(4, int), ('S1',),
                     {'behavior_onset': onset_s})
  windows = Windows(seqs, Normalizer.fit(poses), seq_len=10, frame_lag=2)
  for index in inputs.auto_indices(windows, 4, seed=3):
    seq, start = windows.locate(index)
    assert start == round(onset_s[seq] * 50), (seq, start)  # raw frames at 50 Hz, not seconds


def test_a_subcommand_registered_from_outside_the_library(run_dir):
  commands.register('toy', 'tests.toy_subcommand')
  try:
    entry = commands.run('toy', workdir=run_dir, num=3)
    assert entry['command'] == 'toy' and entry['stats'] == {'windows': 3}
    assert entry['frames'] == 1 and entry['size'][0] == pytest.approx(260 * 3, abs=2)
    with pytest.raises(errors.InputError, match=r'toy takes no option --k; its options'):
      commands.run('toy', workdir=run_dir, k=2)
  finally:
    del commands.SUBCOMMANDS['toy']
  with pytest.raises(errors.InputError, match=r"Unknown subcommand 'toy'; choose one of transfer"):
    commands.run('toy', workdir=run_dir)


def test_a_converted_upstream_vunet_renders_video(run_dir, appearance_dir, tmp_path):
  """The authors' appearance network (here random weights in upstream's classes, saved as their
  ignite checkpoint in PyTorch 1.3's legacy format) converts into a run that renders video."""
  torch = pytest.importorskip('torch')
  from bds_jax import convert_upstream  # pylint: disable=g-import-not-at-top
  from tests import upstream_torch  # pylint: disable=g-import-not-at-top
  c = runs.Run(appearance_dir).config  # the smoke preset on synthetic_people's part crops
  m = c.model
  torch.manual_seed(0)
  net = upstream_torch.randomize(upstream_torch.VunetAlter(
      m.image_size, m.bottleneck_factor, c.data.box_factor, 30, m.nf_start, m.nf_max), 3,
                                 gains=(0.3, 0.7)).eval()
  path = str(tmp_path / 'reg_ckpt_model_7.pth')
  torch.save({'model': net.state_dict(), 'optimizer': {}}, path,
             _use_new_zipfile_serialization=False)
  converted = convert_upstream.convert_appearance(path, str(tmp_path / 'converted'), c)
  entry = commands.run('video', **_settings(run_dir, appearance_workdir=converted.path,
                                            target='test:0', name='converted'))
  assert entry['appearance_step'] == 7 and entry['appearance_workdir'] == converted.path
  assert runs.Run(converted.path).config.data.crop_geometry == 'upstream'
  frames = iio2.mimread(os.path.join(run_dir, 'synthesis', entry['video']))
  assert len(frames) == entry['frames'] and np.std(frames[-1]) > 5  # a picture, not a blank
