"""Stickmen and in-plane part crops (bds_jax.imaging) on hand-built keypoints."""

import numpy as np
import pytest

from bds_jax import imaging
from bds_jax import skeleton
from bds_jax.imaging import inplane
from bds_jax.imaging import stickman as sm


def frontal_keypoints():
  """A person facing the viewer in a 128 px image: their right side is on the image's left."""
  k = np.zeros((17, 2))
  k[0] = (64, 70)  # pelvis
  k[sm.R_HIP], k[sm.L_HIP] = (54, 70), (74, 70)
  k[sm.R_KNEE], k[sm.L_KNEE] = (54, 92), (74, 92)
  k[sm.R_FOOT], k[sm.L_FOOT] = (54, 114), (74, 114)
  k[7], k[sm.THORAX], k[sm.NECK], k[sm.HEAD] = (64, 55), (64, 40), (64, 32), (64, 22)
  k[sm.R_SHOULDER], k[sm.L_SHOULDER] = (48, 40), (80, 40)
  k[sm.R_ELBOW], k[sm.L_ELBOW] = (36, 52), (92, 52)
  k[sm.R_WRIST], k[sm.L_WRIST] = (30, 66), (98, 66)
  return k


def px(image, point):
  x, y = np.round(point).astype(int)
  return tuple(int(v) for v in image[y, x])


def test_stickman_sides_torso_and_head():
  k = frontal_keypoints()
  img = imaging.draw_stickman(k, 128)
  assert img.shape == (128, 128, 3) and img.dtype == np.uint8
  mid = lambda i, j: (k[i] + k[j]) / 2
  # Right limbs are green (channel 1), left limbs red (channel 0), as upstream.
  assert px(img, mid(sm.R_ELBOW, sm.R_WRIST)) == (0, 255, 0)
  assert px(img, mid(sm.R_KNEE, sm.R_FOOT)) == (0, 255, 0)
  assert px(img, mid(sm.L_ELBOW, sm.L_WRIST)) == (255, 0, 0)
  assert px(img, mid(sm.L_KNEE, sm.L_FOOT)) == (255, 0, 0)
  # Inside the torso polygon; the right hip-shoulder line is drawn over the fill.
  assert px(img, (64, 56)) == (0, 127, 255)
  assert px(img, mid(sm.R_HIP, sm.R_SHOULDER)) == (0, 255, 255)
  assert px(img, mid(sm.NECK, sm.HEAD)) == (127, 127, 0)
  assert px(img, (10, 10)) == (0, 0, 0)
  # The skeleton's sides agree with the stickman's.
  assert {sm.R_ELBOW, sm.R_WRIST, sm.R_KNEE} <= set(skeleton.RIGHT_JOINTS)
  assert {sm.L_ELBOW, sm.L_WRIST, sm.L_KNEE} <= set(skeleton.LEFT_JOINTS)


def test_stickman_missing_joints_width_and_dtype():
  k = frontal_keypoints()
  valid = np.ones(17, bool)
  valid[sm.R_WRIST] = False
  img = imaging.draw_stickman(k, 128, valid=valid)
  assert px(img, (k[sm.R_ELBOW] + k[sm.R_WRIST]) / 2) == (0, 0, 0)
  assert px(img, (k[sm.L_ELBOW] + k[sm.L_WRIST]) / 2) == (255, 0, 0)
  # Negative coordinates mark a joint missing, as upstream; NaN is fine where masked.
  k2 = k.copy()
  k2[sm.R_WRIST] = -1
  np.testing.assert_array_equal(imaging.draw_stickman(k2, 128), img)
  k3 = k.copy()
  k3[sm.R_WRIST] = np.nan
  np.testing.assert_array_equal(imaging.draw_stickman(k3, 128, valid=valid), img)
  # A torso with only 2 valid points is not filled.
  valid = np.zeros(17, bool)
  valid[[sm.R_HIP, sm.L_HIP]] = True
  assert imaging.draw_stickman(k, 128, valid=valid).max() == 0
  # Thicker lines; float output is uint8 / 255.
  thin = (imaging.draw_stickman(k, 128)[..., 0] == 255).sum()
  thick = (imaging.draw_stickman(k, 128, line_width=5)[..., 0] == 255).sum()
  assert 3.5 * thin < thick < 6.5 * thin
  f = imaging.draw_stickman(k, (100, 140), dtype=np.float32)
  assert f.shape == (100, 140, 3) and f.dtype == np.float32
  np.testing.assert_allclose(f, imaging.draw_stickman(k, (100, 140)) / 255.0, atol=1e-7)


def test_stickman_one_pixel_lines_are_connected():
  k = frontal_keypoints()
  k[sm.L_ELBOW], k[sm.L_WRIST] = (80.0, 52.0), (120.3, 61.7)  # shallow slope
  img = imaging.draw_stickman(k, 128)
  for x in range(81, 120):
    assert img[:, x, 0].max() == 255, f'gap in the 1 px line at column {x}'


@pytest.mark.parametrize('kwargs, match', [
    (dict(keypoints=np.zeros((16, 2))), r'\(17, 2\)'),
    (dict(keypoints=np.full((17, 2), np.nan)), 'NaN'),
    (dict(size=0), 'size'),
    (dict(size=(64,)), 'size'),
    (dict(size=12.5), 'size'),
    (dict(line_width=0), 'line_width'),
    (dict(valid=np.ones(17)), 'bool mask'),
])
def test_stickman_errors(kwargs, match):
  args = dict(keypoints=frontal_keypoints(), size=128)
  args.update(kwargs)
  with pytest.raises(ValueError, match=match):
    imaging.draw_stickman(**args)


def linear_image(h=128, w=128):
  """Channels x, y and x + 2y: bilinear sampling reproduces it exactly at any point."""
  y, x = np.mgrid[0:h, 0:w].astype(np.float64)
  return np.stack([x, y, x + 2 * y], axis=-1)


def test_inplane_torso_box_is_an_exact_crop():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
  k = frontal_keypoints()
  # Torso corners map onto crop corners (0,0), (1,0), (1,1), (0,1) in this order.
  x0, y0, s = 20, 30, 64
  k[sm.R_HIP], k[sm.R_SHOULDER] = (x0, y0), (x0 + s - 1, y0)
  k[sm.L_SHOULDER], k[sm.L_HIP] = (x0 + s - 1, y0 + s - 1), (x0, y0 + s - 1)
  crops = imaging.inplane_normalize(image, k, box_factor=1)
  assert crops.shape == (64, 64, 30) and crops.dtype == np.uint8
  np.testing.assert_array_equal(crops[..., 0:3], image[y0:y0 + s, x0:x0 + s])


def test_inplane_limb_rectangle_and_orientation():
  image = linear_image()
  k = frontal_keypoints()
  k[sm.R_SHOULDER], k[sm.R_ELBOW] = (40.0, 20.0), (40.0, 60.0)  # straight down, 40 px
  crops = imaging.inplane_normalize(image, k, crop_size=32)
  part = crops[..., 3 * imaging.PARTS.index('r_upper_arm'):][..., :3]
  i, j = np.mgrid[0:32, 0:32]
  # Half-width |segment| / 4 = 10 px; the first joint on row 0, image left on crop left.
  src_x, src_y = 30.0 + j * 20.0 / 31, 20.0 + i * 40.0 / 31
  np.testing.assert_allclose(part, np.stack([src_x, src_y, src_x + 2 * src_y], -1), atol=1e-9)


def test_inplane_missing_parts_and_fallbacks():
  image = linear_image() + 1.0  # no zero pixels, so a zero crop means "missing"
  k = frontal_keypoints()
  valid = np.ones(17, bool)
  valid[[sm.L_ELBOW, sm.L_WRIST]] = False
  crops = imaging.inplane_normalize(image, k, valid=valid)
  part = lambda name: crops[..., 3 * imaging.PARTS.index(name):][..., :3]
  assert np.all(part('l_forearm') == 0)  # both joints missing
  assert np.all(part('l_upper_arm') > 0)  # one missing: runs down to the image bottom
  quads = inplane.part_quads(k, 128, valid)
  np.testing.assert_allclose(quads[imaging.PARTS.index('l_upper_arm')][2:].mean(axis=0),
                             (k[sm.L_SHOULDER][0], 127.0))
  valid = np.ones(17, bool)
  valid[sm.HEAD] = False
  assert np.all(part_of(imaging.inplane_normalize(image, k, valid=valid), 'head') > 0)
  valid[sm.R_SHOULDER] = False  # no shoulder line: no head, no torso
  crops = imaging.inplane_normalize(image, k, valid=valid)
  assert np.all(part_of(crops, 'head') == 0) and np.all(part_of(crops, 'torso') == 0)
  # A zero-length limb is missing too.
  k[sm.R_KNEE] = k[sm.R_HIP]
  assert np.all(part_of(imaging.inplane_normalize(image, k), 'r_thigh') == 0)


def part_of(crops, name):
  index = imaging.PARTS.index(name)
  return crops[..., 3 * index:3 * index + 3]


def test_inplane_replicates_borders():
  image = linear_image()
  k = frontal_keypoints()
  k[sm.R_KNEE], k[sm.R_FOOT] = (54.0, 100.0), (54.0, 200.0)  # the shin leaves the image
  shin = part_of(imaging.inplane_normalize(image, k), 'r_shin')
  assert shin[..., 1].max() == 127.0  # y clamps at the last row
  np.testing.assert_allclose(shin[-1, :, 1], 127.0)


@pytest.mark.parametrize('kwargs, match', [
    (dict(image=np.zeros((64, 64))), 'height, width, channels'),
    (dict(image=np.zeros((64, 64, 3), np.int32)), 'uint8 or floating'),
    (dict(keypoints=np.zeros((17, 3))), r'\(17, 2\)'),
    (dict(box_factor=-1), 'box_factor'),
    (dict(box_factor=7), 'crop side'),
    (dict(geometry='theirs'), 'crop geometry'),
])
def test_inplane_errors(kwargs, match):
  args = dict(image=np.zeros((64, 64, 3), np.uint8), keypoints=frontal_keypoints() / 2)
  args.update(kwargs)
  with pytest.raises(ValueError, match=match):
    imaging.inplane_normalize(**args)


# ------------------------------------------------------------------ upstream's crop geometry


def test_upstream_limb_crops_are_transposed():
  image = linear_image()
  k = frontal_keypoints()
  k[sm.R_SHOULDER], k[sm.R_ELBOW] = (40.0, 20.0), (40.0, 60.0)  # straight down, 40 px
  s = 32
  crops = imaging.inplane_normalize(image, k, crop_size=s, geometry='upstream')
  i, j = np.mgrid[0:s, 0:s]
  # lib/utils.py t2p: shoulder -> elbow runs along the columns (ours: down the rows), the
  # shoulder + normal corner on the top row, corners at -1 ... S-1 (ours: 0 ... S-1).
  src_x, src_y = 30.0 + (i + 1) * 20.0 / s, 20.0 + (j + 1) * 40.0 / s
  np.testing.assert_allclose(part_of(crops, 'r_upper_arm'),
                             np.stack([src_x, src_y, src_x + 2 * src_y], -1), atol=1e-9)
  # One joint missing (both coordinates <= 0): from the present joint down to row S - 1,
  # whichever end is missing (ours keeps the limb's direction).
  k[sm.R_SHOULDER] = (-1.0, -1.0)
  quad, dst = imaging.upstream_part_warps(k, 128, s)[imaging.PARTS.index('r_upper_arm')]
  np.testing.assert_allclose(quad[:2].mean(axis=0), k[sm.R_ELBOW])
  np.testing.assert_allclose(quad[2:].mean(axis=0), (k[sm.R_ELBOW][0], 127.0))
  np.testing.assert_allclose(dst, [[-1, -1], [-1, s - 1], [s - 1, s - 1], [s - 1, -1]])


def test_upstream_head_is_mirrored_and_torso_spans_the_crop():
  image = linear_image()
  k = frontal_keypoints()  # neck = shoulder midpoint (64, 40), head (64, 22)
  s = 32
  crops = imaging.inplane_normalize(image, k, crop_size=s, geometry='upstream')
  i, j = np.mgrid[0:s, 0:s]
  # t3p: the head's top on row 0 as ours, but the image's right on the crop's left.
  src_x, src_y = 73.0 - j * 18.0 / s, 22.0 + i * 18.0 / s
  np.testing.assert_allclose(part_of(crops, 'head'),
                             np.stack([src_x, src_y, src_x + 2 * src_y], -1), atol=1e-9)
  ours = part_of(imaging.inplane_normalize(image, k, crop_size=s), 'head')
  assert ours[0, 0, 0] < ours[0, -1, 0] and src_x[0, 0] > src_x[0, -1]
  # No head joint: a square on the shoulder line, from l_shoulder down the first column.
  valid = np.ones(17, bool)
  valid[sm.HEAD] = False
  quad, _ = imaging.upstream_part_warps(k, 128, s, valid)[1]
  np.testing.assert_allclose(quad, [k[sm.L_SHOULDER], k[sm.R_SHOULDER], (48, 8), (80, 8)])
  # t4p: the torso quad's corners land on 0 and S (ours: S - 1), so a square of side S is an
  # exact copy.
  rng = np.random.default_rng(1)
  pixels = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
  x0, y0 = 20, 30
  k[sm.R_HIP], k[sm.R_SHOULDER] = (x0, y0), (x0 + s, y0)
  k[sm.L_SHOULDER], k[sm.L_HIP] = (x0 + s, y0 + s), (x0, y0 + s)
  crops = imaging.inplane_normalize(pixels, k, crop_size=s, geometry='upstream')
  np.testing.assert_array_equal(part_of(crops, 'torso'), pixels[y0:y0 + s, x0:x0 + s])


def test_upstream_geometry_uses_upstreams_market_parts():
  k = np.random.default_rng(2).uniform(10, 118, (18, 2))
  warps = imaging.upstream_part_warps(k, 128, 32, layout=imaging.MARKET)
  np.testing.assert_allclose(warps[0][0], k[[8, 9, 3, 2]])  # data/market.py: body [8,9,3,2]
  for (quad, _), (a, b) in zip(warps[2:], ((0, 1), (1, 2), (6, 7), (7, 8), (3, 4), (4, 5),
                                           (9, 10), (10, 11))):
    np.testing.assert_allclose(quad[:2].mean(axis=0), k[a])
    np.testing.assert_allclose(quad[2:].mean(axis=0), k[b])


def test_image_sets_cut_crops_with_the_configured_geometry():
  from bds_jax.data import images  # pylint: disable=g-import-not-at-top
  pixels = np.random.default_rng(3).integers(0, 256, (128, 128, 3), dtype=np.uint8)
  k = frontal_keypoints()[None].astype(np.float32)
  fields = dict(source=[{'image': pixels}], image_size=128, keypoints=k,
                subjects=np.zeros(1, np.int32), subject_names=('a',),
                sequences=np.array(['s']), frames=np.zeros(1, np.int64), extras={},
                inplane=True, box_factor=2)
  for geometry in imaging.CROP_GEOMETRIES:
    item = images.ImageSet(**fields, crop_geometry=geometry).item(0, 0)
    want = imaging.inplane_normalize(pixels, k[0], box_factor=2, geometry=geometry)
    np.testing.assert_array_equal(item['appearance'], images.to_unit_range(want))
  with pytest.raises(ValueError, match='crop_geometry'):
    images.ImageSet(**fields, crop_geometry='theirs')
