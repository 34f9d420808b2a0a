"""Inception-v3 for IS and FID: the npz format, its checks, and the network against a PyTorch
reference written from torchvision's architecture (BatchNorm unfolded, NCHW, F.interpolate)."""

import numpy as np
import pytest

from bds_jax.models import inception

torch = pytest.importorskip('torch')
F = torch.nn.functional


def test_array_names_and_shapes():
  shapes = inception.array_shapes()
  assert len(shapes) == 94 * 5 + 2  # 94 BasicConv2d (conv + 4 BatchNorm arrays) and fc
  assert shapes['Conv2d_1a_3x3.conv.weight'] == (32, 3, 3, 3)
  assert shapes['Mixed_5b.branch_pool.conv.weight'] == (32, 192, 1, 1)
  assert shapes['Mixed_6e.branch7x7dbl_5.conv.weight'] == (192, 192, 1, 7)
  assert shapes['Mixed_7c.branch3x3dbl_3b.conv.weight'] == (384, 384, 3, 1)
  assert shapes['Mixed_7c.branch_pool.bn.running_var'] == (192,)
  assert shapes['fc.weight'] == (1000, 2048)


def test_load_checks_every_array(tmp_path):
  arrays = inception.random_arrays(1)
  good = tmp_path / 'good.npz'
  np.savez(good, **arrays, **{'AuxLogits.fc.weight': np.zeros((1000, 768), np.float32)})
  loaded = inception.load_inception_v3(str(good))
  np.testing.assert_array_equal(loaded['fc']['kernel'], arrays['fc.weight'].T)
  missing = dict(arrays)
  del missing['Mixed_6a.branch3x3.bn.running_mean']
  np.savez(tmp_path / 'missing.npz', **missing)
  with pytest.raises(ValueError, match=r'missing.npz.*Mixed_6a\.branch3x3\.bn\.running_mean'):
    inception.load_inception_v3(str(tmp_path / 'missing.npz'))
  wrong = dict(arrays, **{'Mixed_5c.branch5x5_2.conv.weight': np.zeros((64, 48, 3, 3))})
  np.savez(tmp_path / 'wrong.npz', **wrong)
  with pytest.raises(ValueError, match=r"'Mixed_5c\.branch5x5_2\.conv\.weight' has shape "
                                       r'\(64, 48, 3, 3\), expected \(64, 48, 5, 5\)'):
    inception.load_inception_v3(str(tmp_path / 'wrong.npz'))
  pickled = dict(arrays, **{'fc.bias': np.array([object()] * 1000, dtype=object)})
  np.savez(tmp_path / 'pickled.npz', **pickled)
  with pytest.raises(ValueError, match='not a readable npz of plain numeric arrays'):
    inception.load_inception_v3(str(tmp_path / 'pickled.npz'))  # never unpickled
  with pytest.raises(FileNotFoundError, match='recipe'):
    inception.load_inception_v3(str(tmp_path / 'nothing.npz'))


def _torch_inception(sd, x):
  """torchvision Inception3.forward at eval, transform_input=False, from its state dict."""
  def conv(name, x, stride=1, padding=0):
    y = F.conv2d(x, sd[f'{name}.conv.weight'], stride=stride, padding=padding)
    y = F.batch_norm(y, sd[f'{name}.bn.running_mean'], sd[f'{name}.bn.running_var'],
                     sd[f'{name}.bn.weight'], sd[f'{name}.bn.bias'], eps=1e-3)
    return F.relu(y)

  def avg(x):
    return F.avg_pool2d(x, 3, stride=1, padding=1)

  def block_a(p, x):
    b5 = conv(f'{p}.branch5x5_2', conv(f'{p}.branch5x5_1', x), padding=2)
    d = conv(f'{p}.branch3x3dbl_1', x)
    d = conv(f'{p}.branch3x3dbl_3', conv(f'{p}.branch3x3dbl_2', d, padding=1), padding=1)
    return torch.cat([conv(f'{p}.branch1x1', x), b5, d, conv(f'{p}.branch_pool', avg(x))], 1)

  def block_b(p, x):
    d = conv(f'{p}.branch3x3dbl_2', conv(f'{p}.branch3x3dbl_1', x), padding=1)
    return torch.cat([conv(f'{p}.branch3x3', x, stride=2),
                      conv(f'{p}.branch3x3dbl_3', d, stride=2), F.max_pool2d(x, 3, 2)], 1)

  def block_c(p, x):
    b = conv(f'{p}.branch7x7_1', x)
    b = conv(f'{p}.branch7x7_3', conv(f'{p}.branch7x7_2', b, padding=(0, 3)), padding=(3, 0))
    d = conv(f'{p}.branch7x7dbl_1', x)
    for i, pad in zip(range(2, 6), ((3, 0), (0, 3), (3, 0), (0, 3))):
      d = conv(f'{p}.branch7x7dbl_{i}', d, padding=pad)
    return torch.cat([conv(f'{p}.branch1x1', x), b, d, conv(f'{p}.branch_pool', avg(x))], 1)

  def block_d(p, x):
    b3 = conv(f'{p}.branch3x3_2', conv(f'{p}.branch3x3_1', x), stride=2)
    b7 = conv(f'{p}.branch7x7x3_1', x)
    b7 = conv(f'{p}.branch7x7x3_3', conv(f'{p}.branch7x7x3_2', b7, padding=(0, 3)),
              padding=(3, 0))
    return torch.cat([b3, conv(f'{p}.branch7x7x3_4', b7, stride=2), F.max_pool2d(x, 3, 2)], 1)

  def block_e(p, x):
    b3 = conv(f'{p}.branch3x3_1', x)
    d = conv(f'{p}.branch3x3dbl_2', conv(f'{p}.branch3x3dbl_1', x), padding=1)
    return torch.cat([
        conv(f'{p}.branch1x1', x),
        conv(f'{p}.branch3x3_2a', b3, padding=(0, 1)), conv(f'{p}.branch3x3_2b', b3, padding=(1, 0)),
        conv(f'{p}.branch3x3dbl_3a', d, padding=(0, 1)),
        conv(f'{p}.branch3x3dbl_3b', d, padding=(1, 0)),
        conv(f'{p}.branch_pool', avg(x))], 1)

  x = F.interpolate(x, size=(299, 299), mode='bilinear', align_corners=False)
  x = conv('Conv2d_2b_3x3', conv('Conv2d_2a_3x3', conv('Conv2d_1a_3x3', x, stride=2)),
           padding=1)
  x = F.max_pool2d(x, 3, 2)
  x = F.max_pool2d(conv('Conv2d_4a_3x3', conv('Conv2d_3b_1x1', x)), 3, 2)
  for name in ('Mixed_5b', 'Mixed_5c', 'Mixed_5d'):
    x = block_a(name, x)
  x = block_b('Mixed_6a', x)
  for name in ('Mixed_6b', 'Mixed_6c', 'Mixed_6d', 'Mixed_6e'):
    x = block_c(name, x)
  x = block_e('Mixed_7c', block_e('Mixed_7b', block_d('Mixed_7a', x)))
  pool = F.adaptive_avg_pool2d(x, 1).flatten(1)
  return F.linear(pool, sd['fc.weight'], sd['fc.bias']), pool


def test_matches_a_torch_reference_on_random_weights():
  arrays = inception.random_arrays(2)
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (2, 80, 80, 3)).astype(np.float32)  # resized to 299 by both
  logits, pool = inception.inception_v3(inception.convert_arrays(arrays), images)
  sd = {k: torch.from_numpy(v.astype(np.float64)) for k, v in arrays.items()}
  with torch.no_grad():
    ref_logits, ref_pool = _torch_inception(sd, torch.from_numpy(
        images.transpose(0, 3, 1, 2).astype(np.float64)))
  for ours, ref in ((pool, ref_pool), (logits, ref_logits)):
    ref = ref.numpy()
    scale = np.abs(ref).max()
    assert scale > 0.1
    np.testing.assert_allclose(np.asarray(ours), ref, atol=1e-4 * scale, rtol=0)
