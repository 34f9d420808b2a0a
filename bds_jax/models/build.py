"""The models of a run, built from its config: one constructor each for trainers and loaders.

Trainers build real modules (`create_models`, `create_flow`) and initialise them from the run's
seed. Loaders (`bds_jax.runs`) need only the module structure and parameter shapes, to restore
a checkpoint's parameters into: `abstract_behavior` and `abstract_flow` trace the same
constructors with `nnx.eval_shape`, so nothing is initialised and no optimizer is built.
"""

import jax
from flax import nnx

from bds_jax import skeleton
from bds_jax.models import appearance as appearance_lib
from bds_jax.models import body_frame
from bds_jax.models import diffusion as diffusion_lib
from bds_jax.models import discriminator as discriminator_lib
from bds_jax.models import flow as flow_lib
from bds_jax.models.behavior import BehaviorModel
from bds_jax.models.regressor import PostureRegressor


def behavior_frame(config, normalizer) -> body_frame.BodyFrame | None:
  """The cVAE's body frame when config.model.frame is 'body' (it needs the run's normalizer)."""
  frame = config.model.get('frame', 'world')
  if frame not in body_frame.FRAMES:
    raise ValueError(f'model.frame={frame!r} is not one of {body_frame.FRAMES}.')
  if frame == 'world':
    return None
  if normalizer is None:
    raise ValueError("model.frame='body' needs the run's normalizer to build the model.")
  return body_frame.BodyFrame.create(normalizer.mean, normalizer.std,
                                     config.model.get('body_xy_scale', 0.3))


def create_models(config, key, normalizer=None) -> tuple[BehaviorModel, PostureRegressor]:
  """The cVAE and its adversarial posture regressor, initialised from one key (in that order).

  `normalizer` (the run's) is needed when config.model.frame is 'body'.
  """
  rngs = nnx.Rngs(params=key)
  m = config.model
  model = BehaviorModel(skeleton.POSE_DIM, m.width, rngs, lstm_impl=m.lstm_impl,
                        compute_dtype=m.compute_dtype,
                        body_frame=behavior_frame(config, normalizer),
                        encoder_input=config.model.get('encoder_input', 'poses'))
  reg = PostureRegressor(m.width, skeleton.POSE_DIM, config.data.seq_len,
                         tuple(m.regressor_widths), m.regressor_time_width, rngs,
                         compute_dtype=m.compute_dtype)
  return model, reg


def create_flow(config, code_dim: int) -> flow_lib.FlowPrior:
  """The flow prior over `code_dim`-d behavior codes, as a flow config describes it."""
  f = config.flow
  return flow_lib.FlowPrior(code_dim, f.num_blocks, f.hidden_width, f.num_layers,
                            nnx.Rngs(params=jax.random.key(config.seed)),
                            seed=f.permutation_seed, compute_dtype=f.compute_dtype)


def split_flow(flow: flow_lib.FlowPrior):
  """(graph, params, buffers): buffers are the fixed permutations, which are not trained."""
  graph, params, buffers = nnx.split(flow, nnx.Param, flow_lib.FixedPermutation)
  return graph, nnx.to_pure_dict(params), nnx.to_pure_dict(buffers)


def create_diffusion(config, code_dim: int, frame: body_frame.BodyFrame | None):
  """The observation-conditioned diffusion prior of a diffusion config (model.num_labels must
  be resolved: the behavior run's number of classes, or 0 without label conditioning)."""
  m = config.model
  if m.num_labels < 0:
    raise ValueError('model.num_labels is unresolved (-1): the trainer sets it from the data.')
  return diffusion_lib.DiffusionPrior(
      code_dim, skeleton.POSE_DIM, config.data.observed, embed_dim=m.embed_dim,
      decoder_hidden=m.decoder_hidden, width=m.width, num_blocks=m.num_blocks,
      num_labels=m.num_labels if m.use_labels else 0, num_steps=m.num_steps,
      rngs=nnx.Rngs(params=jax.random.key(config.seed)), body_frame=frame)


def split_diffusion(prior: diffusion_lib.DiffusionPrior):
  """(graph, params, stats): stats are the fixed min-max code scaling buffers."""
  graph, params, stats = nnx.split(prior, nnx.Param, diffusion_lib.CodeStats)
  return graph, nnx.to_pure_dict(params), nnx.to_pure_dict(stats)


def abstract_diffusion(config, code_dim: int, frame: body_frame.BodyFrame | None):
  """(graph, params, stats) of a diffusion config's prior, as jax.ShapeDtypeStructs."""
  return split_diffusion(nnx.eval_shape(lambda: create_diffusion(config, code_dim, frame)))


def create_appearance(config, key):
  """The appearance model (VUnet) and its adversarial keypoint regressor, from one key.

  The appearance input is the image (3 channels) or, with data.inplane_normalize, its 10 part
  crops (30 channels) at S / 2^data.box_factor.
  """
  m = config.model
  rngs = nnx.Rngs(params=key)
  model = appearance_lib.AppearanceModel(
      rngs, image_size=m.image_size, bottleneck_factor=m.bottleneck_factor,
      box_factor=config.data.box_factor,
      appearance_channels=30 if config.data.inplane_normalize else 3, nf_start=m.nf_start,
      nf_max=m.nf_max, n_latent_scales=m.n_latent_scales, dropout_rate=m.dropout_rate,
      sigmoid_logstd=m.sigmoid_logstd, logstd_range=tuple(m.logstd_range),
      compute_dtype=m.compute_dtype, part_warp=bool(m.get('part_warp', False)),
      part_blend=bool(m.get('part_blend', False)),
      room_branch=bool(m.get('room_branch', False)),
      room_scene=bool(m.get('room_scene', False)))
  reg = appearance_lib.KeypointRegressor(model.latent_shapes, m.num_keypoints, rngs,
                                         conv_channels=m.regressor_channels,
                                         hidden=m.regressor_hidden)
  return model, reg


def create_discriminator(config, key) -> discriminator_lib.PatchDiscriminator | None:
  """The appearance model's patch discriminator, or None when no loss term uses it."""
  l = config.loss
  if not (l.get('gan_weight', 0.0) or l.get('feature_matching_weight', 0.0)):
    return None
  return discriminator_lib.PatchDiscriminator(nnx.Rngs(params=key),
                                              channels=config.model.disc_channels,
                                              num_layers=config.model.disc_layers)


def abstract_appearance(config):
  """(model graph, params, regressor graph, regressor params), params as ShapeDtypeStructs."""
  model, reg = nnx.eval_shape(lambda: create_appearance(config, jax.random.key(0)))
  (graph, params), (reg_graph, reg_params) = nnx.split(model), nnx.split(reg)
  return graph, nnx.to_pure_dict(params), reg_graph, nnx.to_pure_dict(reg_params)


def abstract_behavior(config, normalizer=None):
  """(graph, params) of a behavior config's cVAE, params as jax.ShapeDtypeStructs."""
  model = nnx.eval_shape(lambda: create_models(config, jax.random.key(0), normalizer)[0])
  graph, params = nnx.split(model)
  return graph, nnx.to_pure_dict(params)


def abstract_flow(config, code_dim: int):
  """(graph, params, buffers) of a flow config's prior, as jax.ShapeDtypeStructs."""
  return split_flow(nnx.eval_shape(lambda: create_flow(config, code_dim)))
