"""Stick-figure animations: GIF and MP4 files with the right frames, clear errors."""

import imageio.v2 as iio2
import imageio.v3 as iio
import numpy as np
import pytest

from bds_jax import synthetic
from bds_jax.viz import stick_figures


# Reading the MP4 back runs ffmpeg through subprocess (fork + exec); JAX's fork warning does not
# apply to that.
@pytest.mark.filterwarnings(r'ignore:os\.fork\(\) was called')
def test_gif_and_mp4(tmp_path):
  # Mid-behavior frames, so every frame differs (GIF writers merge identical frames).
  a = synthetic.render('S9', 'standing', 'walk_in_place', 1, 2, 100)[60:72]
  b = synthetic.render('S11', 'sitting', 'clap', 3, 4, 100)[60:68]  # shorter: holds its end
  frames = stick_figures.render_frames([[('a', a), ('b', b)]])
  assert frames.shape[0] == 12 and frames.dtype == np.uint8 and frames.shape[-1] == 3
  assert not np.array_equal(frames[0], frames[-1])  # it moves
  stick_figures.save_animation(str(tmp_path / 'x.gif'), frames, fps=25)
  assert iio.imread(tmp_path / 'x.gif').shape[0] == 12
  stick_figures.save_animation(str(tmp_path / 'x.mp4'), frames, fps=25)
  reader = iio2.get_reader(str(tmp_path / 'x.mp4'))
  assert reader.count_frames() == 12 and reader.get_meta_data()['fps'] == 25
  with pytest.raises(ValueError, match=r"x.avi: animations are written as .gif or .mp4"):
    stick_figures.save_animation(str(tmp_path / 'x.avi'), frames, fps=25)
  with pytest.raises(ValueError, match=r"panel 'bad'.*\(\.\.\., 17, 3\)"):
    stick_figures.render_frames([[('bad', np.zeros((5, 16, 3)))]])
  assert sorted(p.name for p in tmp_path.iterdir()) == ['x.gif', 'x.mp4']  # no temp files left
