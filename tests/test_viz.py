"""Animated figures and video files: frames, sizes, fps, clear errors, no half-written files."""

import imageio.v2 as iio2
import imageio.v3 as iio
import numpy as np
import pytest

from bds_jax import procedural
from bds_jax.viz import animation
from bds_jax.viz import video_io


def _clips():
  # Mid-behavior frames, so every frame differs (GIF writers merge identical frames).
  a = procedural.render('S9', 'standing', 'walk_in_place', 1, 2, 100)[60:72]
  b = procedural.render('S11', 'sitting', 'clap', 3, 4, 100)[60:68]  # shorter: holds its end
  return a, b


# Reading the MP4 back runs ffmpeg through subprocess (fork + exec); JAX's fork warning does not
# apply to that.
@pytest.mark.filterwarnings(r'ignore:os\.fork\(\) was called')
def test_gif_and_mp4(tmp_path):
  a, b = _clips()
  frames = animation.render([[animation.Panel('a', a), animation.Panel('b', b)]], fps=25,
                            title='two clips')
  assert frames.shape[0] == 12 and frames.dtype == np.uint8 and frames.shape[-1] == 3
  assert not np.array_equal(frames[0], frames[-1])  # it moves
  video_io.write(str(tmp_path / 'x.gif'), frames, fps=25)
  assert iio.imread(tmp_path / 'x.gif').shape[0] == 12
  odd = frames[:, :-1] if frames.shape[1] % 2 == 0 else frames  # an odd height is padded
  video_io.write(str(tmp_path / 'x.mp4'), odd, fps=25)
  reader = iio2.get_reader(str(tmp_path / 'x.mp4'))
  assert reader.count_frames() == 12 and reader.get_meta_data()['fps'] == 25
  assert reader.get_meta_data()['size'][::-1] == tuple(s + s % 2 for s in odd.shape[1:3])
  with pytest.raises(ValueError, match=r"x.avi: animations are written as .gif or .mp4"):
    video_io.write(str(tmp_path / 'x.avi'), frames, fps=25)
  assert sorted(p.name for p in tmp_path.iterdir()) == ['x.gif', 'x.mp4']  # no temp files left


def test_panels_hold_still_clips_and_images():
  a, _ = _clips()
  image = np.zeros((32, 32, 3), np.uint8)
  image[:, 16:] = 255
  frames = animation.render([[animation.Panel('clip', a), animation.Panel('start', a[0])],
                             [animation.Panel('image', images=image), None]], fps=50, counter=False)
  assert len(frames) == len(a)
  # The still pose and the image do not move; the clip does. Compare the grid's quadrants.
  h, w = frames.shape[1] // 2, frames.shape[2] // 2
  assert not np.array_equal(frames[0, :h, :w], frames[-1, :h, :w])
  assert np.array_equal(frames[0, :h, w:], frames[-1, :h, w:])
  assert np.array_equal(frames[0, h:], frames[-1, h:])
  # The image is drawn: both its black and its white half appear in the lower left cell.
  cell = frames[0, h:, :w].reshape(-1, 3)
  assert (cell.sum(1) == 0).any() and (cell.min(1) == 255).any()


def test_the_frame_counter_changes_and_limits_are_fixed_per_clip():
  a, _ = _clips()
  with_counter = animation.render([[animation.Panel('a', a[:1].repeat(3, 0))]], fps=25)
  assert not np.array_equal(with_counter[0], with_counter[1])  # only the counter moves
  without = animation.render([[animation.Panel('a', a[:1].repeat(3, 0))]], fps=25,
                             counter=False)
  assert np.array_equal(without[0], without[2])


def test_bad_panels_are_clear_errors():
  with pytest.raises(ValueError, match=r"panel 'bad'.*\(\.\.\., 17, 3\)"):
    animation.Panel('bad', np.zeros((5, 16, 3)))
  with pytest.raises(ValueError, match=r"Panel 'both': give poses or images"):
    animation.Panel('both')
  with pytest.raises(ValueError, match=r"panel 'img': images must be \(T, H, W, 3\)"):
    animation.Panel('img', images=np.zeros((4, 4)))
  with pytest.raises(ValueError, match='at least one panel'):
    animation.render([[None]], fps=25)
