"""The metric writer's TensorBoard images, read back from the event file."""

import numpy as np
import pytest

from bds_jax import metric_writer
import training_hooks  # pylint: disable=g-bad-import-order


def test_images_round_trip_through_the_event_file(tmp_path):
  rng = np.random.default_rng(0)
  a = rng.integers(0, 256, (20, 36, 3), dtype=np.uint8)
  b = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
  writer = metric_writer.MetricWriter(str(tmp_path))
  writer.write_scalars(3, {'loss': 1.5})
  writer.write_images(3, {'figure': a})
  writer.write_images(7, {'figure': b, 'other': a})
  with pytest.raises(ValueError, match=r"'bad' must be an \(H, W, 3\) uint8 image"):
    writer.write_images(8, {'bad': a.astype(np.float32)})
  writer.close()
  images = training_hooks.tensorboard_images(tmp_path)
  assert set(images) == {('figure', 3), ('figure', 7), ('other', 7)}
  np.testing.assert_array_equal(images[('figure', 3)][..., :3], a)  # PNG: lossless
  np.testing.assert_array_equal(images[('figure', 7)][..., :3], b)
  assert training_hooks.logged(tmp_path, 'loss') == [(3, 1.5)]  # images stay out of the JSONL
  assert metric_writer.is_image(a) and not metric_writer.is_image(a[..., :2])
