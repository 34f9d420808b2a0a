"""bf16 compute with float32 parameters and optimizer state: close to float32, still learns."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from bds_jax import metric_writer
from bds_jax.models import flow as flow_lib
from bds_jax.models import lstm
from bds_jax.models import precision
from bds_jax.models.behavior import BehaviorModel
from bds_jax.train import behavior as trainer


def test_bf16_kernels_track_float32_and_return_float32_gradients():
  k = jax.random.split(jax.random.key(0), 4)
  x = jax.random.normal(k[0], (4, 12, 51))
  w = jax.random.uniform(k[1], (64, 51 + 16), minval=-0.25, maxval=0.25)
  b = jnp.zeros(64)
  z = jax.random.normal(k[2], (4, 16))
  w_out = jax.random.uniform(k[3], (51, 16), minval=-0.25, maxval=0.25)

  def loss(w, w_out, dtype):
    h = lstm.lstm_final_state(x, w, b, z, z, dtype)
    y = lstm.residual_decoder(w, b, w_out, jnp.zeros(51), x[:, 0], h, h, 12, dtype)
    return jnp.mean(y ** 2)

  bf16 = jnp.dtype('bfloat16')
  np.testing.assert_allclose(loss(w, w_out, bf16), loss(w, w_out, None), rtol=2e-2)
  g16 = jax.grad(loss, argnums=(0, 1))(w, w_out, bf16)
  g32 = jax.grad(loss, argnums=(0, 1))(w, w_out, None)
  for a, b_ in zip(g16, g32):
    assert a.dtype == jnp.float32
    assert np.linalg.norm(a - b_) < 0.05 * np.linalg.norm(b_)


def test_bf16_model_keeps_float32_parameters_and_outputs():
  x = jax.random.normal(jax.random.key(0), (4, 9, 51))
  m16 = BehaviorModel(51, 16, nnx.Rngs(0), compute_dtype='bfloat16')
  m32 = BehaviorModel(51, 16, nnx.Rngs(0))
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(nnx.state(m16, nnx.Param)))
  (y16, mu16, _), (y32, mu32, _) = m16(x), m32(x)
  assert y16.dtype == mu16.dtype == jnp.float32
  np.testing.assert_allclose(y16, y32, atol=0.05)
  np.testing.assert_allclose(mu16, mu32, atol=0.05)
  with pytest.raises(ValueError, match="compute_dtype='float16'"):
    precision.resolve('float16')


def test_bf16_flow_stays_invertible():
  f = flow_lib.FlowPrior(8, 3, 16, 2, nnx.Rngs(0), compute_dtype='bfloat16')
  z = jax.random.normal(jax.random.key(1), (32, 8))
  flow_lib.initialize_actnorm(f, z)
  u, log_det = f.forward(z)
  assert u.dtype == log_det.dtype == jnp.float32
  np.testing.assert_allclose(f.inverse(u)[0], z, atol=1e-4)


def test_bf16_training_lowers_the_loss(smoke_config, tmp_path):
  c = smoke_config
  c.model.compute_dtype = 'bfloat16'
  c.num_steps = 60
  c.log_every_steps = 5
  c.final_gif = False
  result = trainer.train_and_evaluate(c, str(tmp_path))
  recon = [r['train/recon'] for r in metric_writer.read_jsonl(str(tmp_path / 'metrics.jsonl'))
           if 'train/recon' in r]
  assert np.mean(recon[-3:]) < 0.5 * np.mean(recon[:2]), recon
  state = jax.device_get(result.state)
  for part in ('vae', 'reg', 'vae_opt', 'reg_opt'):
    assert all(x.dtype in (np.float32, np.int32) for x in jax.tree.leaves(state[part])), part
