"""What loading a run gives: each kind's trained model, ready to use (`runs.Run.load_*`).

Plain frozen records of a graph, its restored parameters and what they need (the behavior
model's normalizer, a prior's behavior model), with the calls researchers make on them: the
nnx module (`model()`, `flow()`, `prior()`, `regressor()`) and a `bds_jax.sampling.Sampler`.
`bds_jax.runs` builds them and re-exports them (`runs.Behavior`, ...).
"""

import dataclasses

import ml_collections
from flax import nnx

from bds_jax.data.normalization import Normalizer
from bds_jax.sampling import Sampler


@dataclasses.dataclass(frozen=True)
class _Loaded:
  """What every record holds: the run it was loaded from and the step of its checkpoint."""
  run: object  # the runs.Run
  step: int

  @property
  def config(self) -> ml_collections.ConfigDict:
    return self.run.config


@dataclasses.dataclass(frozen=True)
class Behavior(_Loaded):
  """A trained behavior model: the cVAE's graph and parameters, and its normalizer."""
  model_def: object
  params: dict
  normalizer: Normalizer

  def model(self):
    return nnx.merge(self.model_def, self.params)

  def sampler(self, flow: 'Flow | None' = None,
              diffusion: 'Diffusion | None' = None) -> Sampler:
    d = self.config.data
    return Sampler(self.model_def, self.params, self.normalizer, seq_len=d.seq_len,
                   frame_lag=d.frame_lag, flow_def=flow.flow_def if flow else None,
                   flow_state={'params': flow.params, 'buffers': flow.buffers} if flow else None,
                   diffusion_def=diffusion.prior_def if diffusion else None,
                   diffusion_state=({'params': diffusion.params, 'stats': diffusion.stats}
                                    if diffusion else None))


@dataclasses.dataclass(frozen=True)
class Flow(_Loaded):
  """A trained flow prior and the behavior model whose codes it models."""
  flow_def: object
  params: dict
  buffers: dict
  behavior: Behavior

  def flow(self):
    return nnx.merge(self.flow_def, self.params, self.buffers)

  def sampler(self) -> Sampler:
    return self.behavior.sampler(self)


@dataclasses.dataclass(frozen=True)
class Diffusion(_Loaded):
  """A trained diffusion prior (observation encoder and EMA denoiser) and its behavior model."""
  prior_def: object
  params: dict        # {'observation': encoder/autoencoder, 'denoiser': the EMA weights}
  stats: dict         # the code scaling
  behavior: Behavior

  def prior(self):
    return nnx.merge(self.prior_def, self.params, self.stats)

  def sampler(self, flow: Flow | None = None) -> Sampler:
    return self.behavior.sampler(flow, self)


@dataclasses.dataclass(frozen=True)
class Appearance(_Loaded):
  """A trained appearance model (VUnet) and its adversarial keypoint regressor."""
  model_def: object
  params: dict
  reg_def: object
  reg_params: dict

  def model(self):
    return nnx.merge(self.model_def, self.params)

  def regressor(self):
    return nnx.merge(self.reg_def, self.reg_params)
