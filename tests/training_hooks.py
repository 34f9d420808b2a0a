"""Helpers shared by the training tests: signals sent from inside a run, logged scalars."""

import os
import signal as signal_lib

from bds_jax import metric_writer


def signal_at(step: int, sig=signal_lib.SIGTERM, times: int = 1):
  """A trainer hook that sends this process `sig` (`times` times) after step `step`."""
  def hook(s, metrics):
    del metrics
    if s == step:
      for _ in range(times):
        os.kill(os.getpid(), sig)
  return hook


def logged(workdir, key: str) -> list[tuple[int, float]]:
  """(step, value) of every metrics.jsonl row of `workdir` that logs `key`."""
  rows = metric_writer.read_jsonl(os.path.join(workdir, 'metrics.jsonl'))
  return [(r['step'], r[key]) for r in rows if key in r]


def tensorboard_images(workdir) -> dict:
  """{(tag, step): uint8 image} of every image summary in `workdir`/tensorboard, read back from
  the event files (TFRecord framing: length, its CRC, the Event proto, its CRC)."""
  import io  # pylint: disable=g-import-not-at-top
  import struct  # pylint: disable=g-import-not-at-top
  import imageio.v3 as iio  # pylint: disable=g-import-not-at-top
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  out = {}
  folder = os.path.join(workdir, 'tensorboard')
  for name in sorted(os.listdir(folder)):
    with open(os.path.join(folder, name), 'rb') as f:
      data = f.read()
    pos = 0
    while pos < len(data):
      (length,) = struct.unpack('<Q', data[pos:pos + 8])
      event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
      pos += 12 + length + 4
      for value in event.summary.value:
        if value.HasField('image'):
          out[(value.tag, event.step)] = iio.imread(io.BytesIO(value.image.encoded_image_string))
  return out
