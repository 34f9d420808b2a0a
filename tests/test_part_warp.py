"""The part warp (model.part_warp): crop coordinates of a target pose, and crops sampled into it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from bds_jax import imaging
from bds_jax.data import images
from bds_jax.imaging import inplane
from bds_jax.models import appearance as ap
from bds_jax.models import part_warp
from test_imaging import frontal_keypoints
from test_imaging import linear_image


def _warp(crops, coords):
  return np.asarray(part_warp.warp_parts(jnp.asarray(crops[None], jnp.float32),
                                         jnp.asarray(coords[None], jnp.float32))[0])


@pytest.mark.parametrize('geometry', inplane.GEOMETRIES)
def test_own_crops_warped_back_give_the_image(geometry):
  """Crops of an image sampled back into the same pose reproduce the image inside every part
  (a linear image: bilinear sampling is exact up to the crop's resolution)."""
  image, k = linear_image(), frontal_keypoints()
  crops = imaging.inplane_normalize(image, k, box_factor=1, geometry=geometry)
  coords = imaging.part_coordinates(k, 128, 64, geometry=geometry)
  assert coords.shape == (128, 128, 30) and coords.dtype == np.float32
  out = _warp(crops, coords)
  assert out.shape == (128, 128, 40)
  inside = coords[..., 2::3]
  np.testing.assert_array_equal(out[..., 30:], inside)
  for p, name in enumerate(imaging.PARTS):
    mask = inside[..., p] > 0
    assert mask.sum() > 20, name  # every part of the frontal pose shows
    # at most about one source pixel off: crop pixels are 2 image pixels apart (box_factor 1)
    err = np.abs(out[..., 3 * p:3 * p + 3][mask] - image[mask])
    assert np.median(err) < 1.0 and err.max() < 4.0, (name, np.median(err), err.max())
    assert not out[..., 3 * p:3 * p + 3][~mask].any(), name  # zero outside the part


def test_coordinates_follow_the_target_pose_and_missing_parts():
  k = frontal_keypoints()
  coords = imaging.part_coordinates(k, 128, 64)
  torso = coords[..., 2] > 0
  ys, xs = np.nonzero(torso)
  assert 46 <= xs.min() <= 50 and 78 <= xs.max() <= 82 and 38 <= ys.min() <= 42
  moved = k + (10, 5)  # the person moves right and down: so does every part
  shifted = imaging.part_coordinates(moved, 128, 64)
  differ = np.abs(shifted[5:, 10:] - coords[:-5, :-10]) > 1e-4
  assert differ.mean() < 1e-3  # only pixels on a quad's edge may round the other way
  valid = np.ones(17, bool)
  valid[[imaging.stickman.R_ELBOW, imaging.stickman.R_WRIST]] = False
  gone = imaging.part_coordinates(k, 128, 64, valid=valid)
  assert not gone[..., 3 * imaging.PARTS.index('r_forearm') + 2].any()
  assert gone[..., 2].any()  # the torso is still there
  with pytest.raises(ValueError, match='crop geometry'):
    imaging.part_coordinates(k, 128, 64, geometry='mirror')


def test_model_reads_the_warped_crops_and_needs_them():
  """With part_warp the output depends on the appearance crops through the posture stream
  (the latents held fixed), and decode without the crops is refused with a clear message."""
  model = ap.AppearanceModel(nnx.Rngs(0), image_size=16, bottleneck_factor=2, nf_start=4,
                             nf_max=8, box_factor=1, appearance_channels=30, part_warp=True)
  assert model.condition_channels == 33
  rng = np.random.default_rng(0)
  crops = jnp.asarray(rng.uniform(-1, 1, (2, 8, 8, 30)), jnp.float32)
  k = frontal_keypoints() / 8.0
  stick = np.concatenate([imaging.draw_stickman(k, 16) / 127.5 - 1,
                          imaging.part_coordinates(k, 16, 8)], -1)
  stick = jnp.asarray(np.stack([stick, stick]), jnp.float32)
  graph, params = nnx.split(model)

  @jax.jit
  def swapped(params, crops):
    m = nnx.merge(graph, params)
    z = m.encode(crops)[2]  # the same latents, the other person's crops
    return m.decode(stick, z, appearance=crops), m.decode(stick, z, appearance=crops[::-1])

  a, b = swapped(params, crops)
  assert float(jnp.abs(a[0] - b[0]).mean()) > 1e-4
  _, _, z = jax.eval_shape(model.encode, crops)
  with pytest.raises(ValueError, match='needs the appearance input'):
    model.decode(stick, z)
  with pytest.raises(ValueError, match='expected NHWC shape'):
    model.decode(stick[..., :3], z, appearance=crops)
  with pytest.raises(ValueError, match='needs them as the appearance input'):
    ap.AppearanceModel(nnx.Rngs(0), image_size=16, bottleneck_factor=3, nf_start=4,
                       nf_max=8, part_warp=True)


def test_blend_copies_a_part_where_it_is_inside_and_paints_elsewhere():
  rng = np.random.default_rng(1)
  painted = jnp.asarray(rng.uniform(-1, 1, (1, 4, 4, 3)), jnp.float32)
  rgb = rng.uniform(-1, 1, (1, 4, 4, 2, 3))
  inside = np.zeros((1, 4, 4, 2))
  inside[:, :2, :, 0] = 1  # part 0 covers the top half, part 1 nothing
  warped = jnp.asarray(np.concatenate([(rgb * inside[..., None]).reshape(1, 4, 4, 6), inside],
                                      -1), jnp.float32)
  logits = np.zeros((1, 4, 4, 3))
  logits[..., 1] = 50.0  # the model prefers part 1, which is nowhere: it gets no weight
  logits[..., 0] = 40.0
  out = np.asarray(part_warp.blend(painted, jnp.asarray(logits, jnp.float32), warped))
  np.testing.assert_allclose(out[:, :2], rgb[:, :2, :, 0], atol=1e-5)
  np.testing.assert_allclose(out[:, 2:], np.asarray(painted)[:, 2:], atol=1e-5)
  model = ap.AppearanceModel(nnx.Rngs(0), image_size=16, bottleneck_factor=2, nf_start=4,
                             nf_max=8, box_factor=1, appearance_channels=30, part_warp=True,
                             part_blend=True)
  image, _, _ = jax.eval_shape(model, jnp.zeros((1, 8, 8, 30)), jnp.zeros((1, 16, 16, 33)))
  assert image.shape == (1, 16, 16, 3)
  with pytest.raises(ValueError, match='needs model.part_warp=True'):
    ap.AppearanceModel(nnx.Rngs(0), image_size=16, bottleneck_factor=2, nf_start=4,
                       nf_max=8, box_factor=1, appearance_channels=30, part_blend=True)


def test_room_branch_paints_the_room_and_the_appearance_cannot_move_it():
  """With model.room_branch the image away from the body (farther than room_margin from every
  part's region) is the room branch's painting of the stickman, whatever the appearance input
  and the decoder's logits; nearer, the room is one candidate of the mix beside the decoder's
  painting, which reads the code."""
  kw = dict(image_size=16, bottleneck_factor=2, nf_start=4, nf_max=8, box_factor=1,
            appearance_channels=30, part_warp=True, part_blend=True)
  model = ap.AppearanceModel(nnx.Rngs(0), room_branch=True, **kw)
  assert model.room_margin == 1
  # 3 RGB + 10 part logits + the decoder's painting + the room: the room's logit is the last
  assert model.decoder.out.bias.shape == (3 + 10 + 2,)
  rng = np.random.default_rng(0)
  coords = np.zeros((1, 16, 16, 30), np.float32)
  coords[0, :4, :4, 0:3] = (0.5, 0.5, 1.0)  # part 0 inside the top-left 4x4 block
  near = np.zeros((16, 16), bool)
  near[:5, :5] = True  # within 1 px of it
  np.testing.assert_array_equal(
      np.asarray(part_warp.near_parts(jnp.asarray(coords), 1))[0, ..., 0], near)
  stickman = jnp.concatenate([jnp.asarray(rng.uniform(-1, 1, (1, 16, 16, 3)), jnp.float32),
                              jnp.asarray(coords)], -1)
  a, b = (jnp.asarray(rng.uniform(-1, 1, (1, 8, 8, 30)), jnp.float32) for _ in range(2))
  none = ap.vb.KeyStream(None, 0)
  room = np.asarray(model.paint_room(stickman[..., :3], none))[0]
  small = stickman[..., :3].reshape(1, 4, 4, 4, 4, 3).mean(axis=(2, 4))  # a quarter of the size
  np.testing.assert_allclose(room, np.asarray(jax.image.resize(
      model.room_down(model.room_up(small, none), [], none), (1, 16, 16, 3), 'linear'))[0],
      atol=1e-6)
  for room_logit in (-100.0, 100.0):
    model.decoder.out.beta[...] = model.decoder.out.beta[...].at[-1].set(room_logit)
    out_a, out_b = (np.asarray(model(x, stickman)[0])[0] for x in (a, b))
    np.testing.assert_allclose(out_a[~near], room[~near], atol=1e-6)
    np.testing.assert_allclose(out_b[~near], room[~near], atol=1e-6)
    if room_logit > 0:  # the mix picks the room near the body too
      np.testing.assert_allclose(out_a[near], room[near], atol=1e-5)
    else:  # the decoder's painting (or part 0's crop) there, which the appearance moves
      assert np.abs(out_a[near] - out_b[near]).mean() > 1e-3
  with pytest.raises(ValueError, match='needs model.part_blend=True'):
    ap.AppearanceModel(nnx.Rngs(0), room_branch=True, **{**kw, 'part_blend': False})
  with pytest.raises(ValueError, match='painted RGB candidates'):
    part_warp.blend(jnp.zeros((1, 4, 4, 3)), jnp.zeros((1, 4, 4, 12)), jnp.zeros((1, 4, 4, 40)))


def test_room_scene_copies_the_visible_room_and_paints_the_hole():
  """With model.room_scene the stickman input ends with a scene (RGB × visible, visible); the
  room away from the body is the scene wherever it is visible and trusted, the room branch's
  painting elsewhere; the appearance input still cannot move it."""
  kw = dict(image_size=16, bottleneck_factor=2, nf_start=4, nf_max=8, box_factor=1,
            appearance_channels=30, part_warp=True, part_blend=True, room_branch=True)
  model = ap.AppearanceModel(nnx.Rngs(0), room_scene=True, **kw)
  assert model.condition_channels == 3 + 30 + part_warp.SCENE_CHANNELS
  assert part_warp.SCENE_CHANNELS == images.SCENE_CHANNELS
  rng = np.random.default_rng(1)
  coords = np.zeros((1, 16, 16, 30), np.float32)
  coords[0, :4, :4, 0:3] = (0.5, 0.5, 1.0)  # part 0 in the top-left block; far: outside 5x5
  far = np.ones((16, 16), bool)
  far[:5, :5] = False
  visible = np.ones((1, 16, 16, 1), np.float32)
  visible[0, 8:12, 8:12] = 0.0  # the hole, where the scene's own person stood
  rgb = rng.uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
  scene = np.concatenate([rgb * visible, visible], -1)
  stickman = jnp.asarray(np.concatenate(
      [rng.uniform(-1, 1, (1, 16, 16, 3)), coords, scene], -1), jnp.float32)
  a, b = (jnp.asarray(rng.uniform(-1, 1, (1, 8, 8, 30)), jnp.float32) for _ in range(2))
  hole, seen = far & (visible[0, ..., 0] == 0), far & (visible[0, ..., 0] == 1)
  for trust_logit in (100.0, -100.0):
    model.room_down.out.beta[...] = model.room_down.out.beta[...].at[-1].set(trust_logit)
    painted = np.asarray(jax.image.resize(  # what the branch paints, at a quarter of the size
        model.room_down(model.room_up(jnp.concatenate([stickman[..., :3], stickman[..., 33:]],
                                                      -1).reshape(1, 4, 4, 4, 4, 7).mean(
            axis=(2, 4)), ap.vb.KeyStream(None, 0)), [], ap.vb.KeyStream(None, 0)),
        (1, 16, 16, 4), 'linear'))[0, ..., :3]
    out_a, out_b = (np.asarray(model(x, stickman)[0])[0] for x in (a, b))
    np.testing.assert_allclose(out_a[far], out_b[far], atol=1e-6)
    np.testing.assert_allclose(out_a[hole], painted[hole], atol=1e-5)
    np.testing.assert_allclose(out_a[seen], (rgb[0] if trust_logit > 0 else painted)[seen],
                               atol=1e-5)
  with pytest.raises(ValueError, match='needs model.room_branch=True'):
    ap.AppearanceModel(nnx.Rngs(0), room_scene=True, **{**kw, 'room_branch': False})


def test_scene_cuts_the_person_out_and_rides_on_the_stickman_input():
  """ImageSet.scene: the frame's RGB with a silhouette wider than body_mask cut out, and its
  visibility; with room_scene every item's stickman input ends with its appearance frame's."""
  k = frontal_keypoints()
  image = linear_image()
  fields = dict(source=[{'image': image}] * 2, image_size=128, keypoints=np.stack([k, k]),
                subjects=np.zeros(2, np.int32), subject_names=('S1',),
                sequences=np.array(['a', 'a']), frames=np.arange(2), extras={},
                inplane=True, part_warp=True)
  ims = images.ImageSet(**fields, room_scene=True)
  scene = ims.scene(0)
  assert scene.shape == (128, 128, images.SCENE_CHANNELS) and scene.dtype == np.float32
  visible = scene[..., 3]
  body = imaging.body_mask(k, 128)
  assert set(np.unique(visible)) == {0.0, 1.0}
  assert np.all(visible[body > 0] == 0) and (1 - visible).sum() > 1.2 * body.sum()
  np.testing.assert_allclose(scene[..., :3], images.to_unit_range(image) * visible[..., None])
  item = ims.item(0, 1)
  assert item['stickman'].shape == (128, 128, 3 + 30 + images.SCENE_CHANNELS)
  np.testing.assert_array_equal(item['stickman'][..., -4:], ims.scene(1))
  with pytest.raises(ValueError, match='needs a scene'):
    ims.pose_input(k)
  assert images.ImageSet(**fields).item(0, 1)['stickman'].shape == (128, 128, 33)
