"""The models of a run, built from its config: one constructor each for trainers and loaders.

Trainers build real modules (`create_models`, `create_flow`) and initialise them from the run's
seed. Loaders (`bds_jax.runs`) need only the module structure and parameter shapes, to restore
a checkpoint's parameters into: `abstract_behavior` and `abstract_flow` trace the same
constructors with `nnx.eval_shape`, so nothing is initialised and no optimizer is built.
"""

import jax
from flax import nnx

from bds_jax import skeleton
from bds_jax.models import flow as flow_lib
from bds_jax.models.behavior import BehaviorModel
from bds_jax.models.regressor import PostureRegressor


def create_models(config, key) -> tuple[BehaviorModel, PostureRegressor]:
  """The cVAE and its adversarial posture regressor, initialised from one key (in that order)."""
  rngs = nnx.Rngs(params=key)
  m = config.model
  model = BehaviorModel(skeleton.POSE_DIM, m.width, rngs, lstm_impl=m.lstm_impl,
                        compute_dtype=m.compute_dtype)
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


def abstract_behavior(config):
  """(graph, params) of a behavior config's cVAE, params as jax.ShapeDtypeStructs."""
  model = nnx.eval_shape(lambda: create_models(config, jax.random.key(0))[0])
  graph, params = nnx.split(model)
  return graph, nnx.to_pure_dict(params)


def abstract_flow(config, code_dim: int):
  """(graph, params, buffers) of a flow config's prior, as jax.ShapeDtypeStructs."""
  return split_flow(nnx.eval_shape(lambda: create_flow(config, code_dim)))
