"""The behavior model's optional body frame: exact inverses and equivariance to placement."""

from flax import nnx
import jax.numpy as jnp
import numpy as np
import pytest

from bds_jax import procedural
from bds_jax.data.normalization import Normalizer
from bds_jax.models import behavior
from bds_jax.models import body_frame


def _rigid(poses, angle, shift):
  """Rotates (..., 17, 3) poses about z by `angle` and moves them by (shift, 0)."""
  c, s = np.cos(angle), np.sin(angle)
  rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
  return poses @ rot.T + np.array([shift[0], shift[1], 0.0])


@pytest.fixture(scope='module')
def data():
  seqs = [procedural.render('S9', p, b, 3, 7 + k, 60) for k, (p, b) in enumerate(
      [('standing', 'wave'), ('sitting', 'kick'), ('crouching', 'squat')])]
  return np.stack(seqs), Normalizer.fit(seqs)


def test_reference_pose_faces_x_at_the_origin(data):
  poses, _ = data
  frame = body_frame.reference_frame(jnp.asarray(poses[:, 0]))
  body = np.asarray(body_frame.to_body(jnp.asarray(poses), *frame))
  ref = body[:, 0]
  np.testing.assert_allclose(ref[:, 0, :2], 0.0, atol=1e-5)   # pelvis at the origin in x, y
  np.testing.assert_allclose(ref[:, :, 2], poses[:, 0, :, 2], atol=1e-5)  # heights kept
  assert np.all(ref[:, 4, 1] > ref[:, 1, 1])  # the left hip is on the left (+y)...
  np.testing.assert_allclose(ref[:, 4, 0], ref[:, 1, 0], atol=1e-5)  # ...level along x
  back = body_frame.to_world(jnp.asarray(body), *frame)
  np.testing.assert_allclose(back, poses, rtol=0, atol=1e-5)


def test_z_scores_round_trip(data):
  poses, norm = data
  bf = body_frame.BodyFrame.create(norm.mean, norm.std, 0.3)
  x = jnp.asarray(norm.normalize(poses))
  frame = bf.frame_of(x[:, 0])
  np.testing.assert_allclose(bf.decode(bf.encode(x, frame), frame), x, rtol=0, atol=1e-4)
  with pytest.raises(ValueError, match='body_xy_scale'):
    body_frame.BodyFrame.create(norm.mean, norm.std, 0.0)
  with pytest.raises(ValueError, match='normalisation'):
    body_frame.BodyFrame.create(norm.mean[:10], norm.std, 0.3)


def test_model_is_equivariant_to_where_people_stand_and_face(data):
  poses, norm = data
  bf = body_frame.BodyFrame.create(norm.mean, norm.std, 0.3)
  model = behavior.BehaviorModel(51, 16, nnx.Rngs(0), body_frame=bf)
  moved = _rigid(poses, 2.0, (0.7, -0.4))
  x, xm = jnp.asarray(norm.normalize(poses)), jnp.asarray(norm.normalize(moved))
  mu, _ = model.posterior(x[:, :20])
  mu_m, _ = model.posterior(xm[:, :20])
  np.testing.assert_allclose(mu_m, mu, rtol=0, atol=1e-4 * float(np.abs(mu).max()))
  out = norm.denormalize(np.asarray(model.decode(mu, x[:, 0], 10)))
  out_m = norm.denormalize(np.asarray(model.decode(mu, xm[:, 0], 10)))
  np.testing.assert_allclose(out_m, _rigid(out, 2.0, (0.7, -0.4)), rtol=0, atol=1e-4)
  # The world-frame model (the paper's) is not: the same code moves differently.
  plain = behavior.BehaviorModel(51, 16, nnx.Rngs(0))
  out = norm.denormalize(np.asarray(plain.decode(mu, x[:, 0], 10)))
  out_m = norm.denormalize(np.asarray(plain.decode(mu, xm[:, 0], 10)))
  assert np.abs(out_m - _rigid(out, 2.0, (0.7, -0.4))).max() > 1e-2


def test_frame_space_loss_counts_a_centimetre_alike_wherever_people_face(data):
  from bds_jax.train import behavior_step  # pylint: disable=g-import-not-at-top
  poses, norm = data
  bf = body_frame.BodyFrame.create(norm.mean, norm.std, 0.3)
  model = behavior.BehaviorModel(51, 16, nnx.Rngs(0), body_frame=bf)
  t, d = 10, 0.03  # 3 cm along each start pose's forward axis, on one joint of one frame

  def loss(p, space):
    _, cos, sin = body_frame.reference_frame(jnp.asarray(p[:, 0]))
    ref = np.asarray(cos), np.asarray(sin)
    off = np.zeros_like(p[:, 1:t + 1])
    off[:, 4, 7, 0], off[:, 4, 7, 1] = d * ref[0], d * ref[1]
    y = jnp.asarray(norm.normalize(p[:, 1:t + 1]))
    x_hat = jnp.asarray(norm.normalize(p[:, 1:t + 1] + off))
    return float(behavior_step.recon_loss(model, x_hat, y, jnp.asarray(norm.normalize(
        p[:, 0])), space))

  expected = (d / 0.3) ** 2 / (t * 51)  # one element of t * 51, in units of body_xy_scale
  for angle in (0.0, 1.0, 2.5):
    moved = _rigid(poses, angle, (0.7, -0.4))
    assert loss(moved, 'frame') == pytest.approx(expected, rel=1e-3)
  # In world z-scores the same error is divided by where people stand (σ of x and y).
  assert loss(poses, 'world') < 0.5 * expected


def test_frame_space_adversary_targets_ignore_where_people_stand_and_face(data):
  """With loss.adversary_space='frame' the posture regressor predicts each window in its first
  frame's body frame: the same targets wherever the window stands and faces (in world
  z-scores they move with it, so a body-frame code could never help the regressor)."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  from bds_jax.train import behavior_step  # pylint: disable=g-import-not-at-top
  from configs import behavior as behavior_config  # pylint: disable=g-import-not-at-top
  poses, norm = data
  cfg = behavior_config.get_config('smoke')
  cfg.model.frame = 'body'
  cfg.loss.adversary_space = 'frame'
  setup, state = behavior_step.build(cfg, 10, norm)
  world = dataclasses.replace(setup, spec=dataclasses.replace(setup.spec, adversary_space='world'))

  def targets(p, s):
    return np.asarray(behavior_step.adversary_targets(s, state['vae'],
                                                      jnp.asarray(norm.normalize(p))))

  ref = targets(poses, setup)
  scale = float(np.abs(ref).max())
  for angle in (1.0, 2.5):
    moved = _rigid(poses, angle, (0.7, -0.4))
    np.testing.assert_allclose(targets(moved, setup), ref, atol=1e-4 * scale)
    assert np.abs(targets(moved, world) - targets(poses, world)).max() > 0.1


def test_diffusion_prior_embedding_ignores_where_the_observed_clip_stands_and_faces(data):
  """The prior's observation embedding, over a body-frame behavior model, is the same for the
  observed clip moved on the floor and turned about z (tolerance relative to its scale)."""
  from bds_jax.models import build  # pylint: disable=g-import-not-at-top
  from configs import behavior as behavior_config  # pylint: disable=g-import-not-at-top
  from configs import diffusion as diffusion_config  # pylint: disable=g-import-not-at-top
  poses, norm = data
  bcfg = behavior_config.get_config('smoke')
  bcfg.model.frame = 'body'
  dcfg = diffusion_config.get_config('smoke')
  dcfg.model.num_labels = 0
  prior = build.create_diffusion(dcfg, bcfg.model.width, build.behavior_frame(bcfg, norm))
  obs = poses[:, -dcfg.data.observed:]
  emb = np.asarray(prior.embed(jnp.asarray(norm.normalize(obs))))
  scale = float(np.abs(emb).max())
  assert scale > 1e-3  # a real embedding, not one that is zero whatever it sees
  for angle, shift in ((2.0, (0.7, -0.4)), (-1.3, (-2.5, 1.9)), (np.pi, (0.0, 3.0))):
    moved = jnp.asarray(norm.normalize(_rigid(obs, angle, shift)))
    np.testing.assert_allclose(prior.embed(moved), emb, rtol=0, atol=1e-4 * scale)
  # The world-frame prior (the paper's behavior model) sees the move.
  world = build.create_diffusion(dcfg, bcfg.model.width, None)
  moved = jnp.asarray(norm.normalize(_rigid(obs, 2.0, (0.7, -0.4))))
  plain = np.asarray(world.embed(jnp.asarray(norm.normalize(obs))))
  assert np.abs(np.asarray(world.embed(moved)) - plain).max() > 1e-2 * np.abs(plain).max()
