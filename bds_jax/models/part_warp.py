"""The part warp: an appearance frame's part crops sampled into a target pose (model.part_warp).

`warp_parts(crops, coordinates)` takes the 10 part crops of the appearance input (B, c, c,
3·P) and the target's per-pixel crop coordinates (B, S, S, 3·P: u, v, inside per part, from
bds_jax/imaging/part_map.py) and samples each crop bilinearly where the target shows that
part: (B, S, S, 4·P), each part's RGB (0 outside it) then the P inside-masks. The posture
stream reads it beside the stickman, so colours and patterns arrive aligned with the pose they
are to be drawn in. It has no parameters and passes no gradient: crops and coordinates are
data.
"""

import jax
import jax.numpy as jnp

CHANNELS_PER_PART = 3  # (u, v, inside); bds_jax/imaging/part_map.py
# model.room_scene's input: RGB times visible, then visible (bds_jax/data/images.py, scene())
SCENE_CHANNELS = 4


def out_channels(num_parts: int) -> int:
  return 4 * num_parts


def warp_parts(crops, coordinates):
  """See the module docstring. float32 in and out; crops in [-1, 1]."""
  b, c, c2, ch = crops.shape
  num_parts = ch // 3
  if c != c2 or ch != 3 * num_parts or coordinates.shape[-1] != CHANNELS_PER_PART * num_parts:
    raise ValueError(f'part warp: crops {crops.shape} and coordinates {coordinates.shape} do '
                     f'not match (expected (B, c, c, 3·P) and (B, S, S, {CHANNELS_PER_PART}·P)).')
  crops = jax.lax.stop_gradient(crops).astype(jnp.float32)
  coords = jax.lax.stop_gradient(coordinates).astype(jnp.float32)
  s_h, s_w = coords.shape[1:3]
  coords = coords.reshape(b, s_h, s_w, num_parts, CHANNELS_PER_PART)
  u, v, inside = (coords[..., i] * ((c - 1) if i < 2 else 1) for i in range(3))
  # crops as (B, P·c·c, 3): part p's pixel (row, col) at p·c² + row·c + col
  table = crops.reshape(b, c, c, num_parts, 3).transpose(0, 3, 1, 2, 4).reshape(b, -1, 3)
  x0 = jnp.clip(jnp.floor(u), 0, c - 2).astype(jnp.int32)
  y0 = jnp.clip(jnp.floor(v), 0, c - 2).astype(jnp.int32)
  fx, fy = (u - x0)[..., None], (v - y0)[..., None]
  base = jnp.arange(num_parts, dtype=jnp.int32) * c * c

  def gather(yy, xx):
    index = (base + yy * c + xx).reshape(b, -1, 1)
    return jnp.take_along_axis(table, index, axis=1).reshape(b, s_h, s_w, num_parts, 3)

  top = gather(y0, x0) * (1 - fx) + gather(y0, x0 + 1) * fx
  low = gather(y0 + 1, x0) * (1 - fx) + gather(y0 + 1, x0 + 1) * fx
  rgb = (top * (1 - fy) + low * fy) * inside[..., None]
  return jnp.concatenate([rgb.reshape(b, s_h, s_w, 3 * num_parts), inside], axis=-1)


def near_parts(coordinates, margin: int):
  """(B, S, S, 1) bool: within `margin` px (a square window) of a pixel inside some part, from
  part_map's per-pixel coordinates (B, S, S, 3·P; every third channel is a part's inside)."""
  inside = jnp.max(coordinates[..., CHANNELS_PER_PART - 1::CHANNELS_PER_PART], axis=-1,
                   keepdims=True)
  size = 2 * int(margin) + 1
  near = jax.lax.reduce_window(inside, -jnp.inf, jax.lax.max, (1, size, size, 1), (1, 1, 1, 1),
                               'SAME')
  return near > 0


def blend(painted, logits, warped):
  """model.part_blend: per pixel, the softmax over P + K `logits` mixes the P warped parts
  (a part outside at that pixel gets no weight) and K painted candidates: the decoder's own
  RGB, and with model.room_branch a room painted from the stickman alone.

  painted (B, S, S, 3·K), logits (B, S, S, P + K), warped: warp_parts' output (B, S, S, 4·P).
  """
  num_parts = warped.shape[-1] // 4
  num_painted = logits.shape[-1] - num_parts
  if num_painted < 1 or painted.shape[-1] != 3 * num_painted:
    raise ValueError(f'blend: {logits.shape[-1]} logits for {num_parts} parts need '
                     f'{num_painted} painted RGB candidates, got {painted.shape[-1]} channels.')
  inside = warped[..., 3 * num_parts:]
  rgb = warped[..., :3 * num_parts].reshape(*warped.shape[:3], num_parts, 3)
  painted = painted.astype(jnp.float32).reshape(*painted.shape[:3], num_painted, 3)
  logits = logits.astype(jnp.float32)
  part_logits = jnp.where(inside > 0, logits[..., :num_parts], -1e9)
  weights = jax.nn.softmax(jnp.concatenate([part_logits, logits[..., num_parts:]], -1), -1)
  return (jnp.sum(weights[..., :num_parts, None] * rgb, axis=-2)
          + jnp.sum(weights[..., num_parts:, None] * painted, axis=-2))


def scene_room(scene, painted, trust_logit):
  """model.room_scene: the room is the scene (B, S, S, SCENE_CHANNELS) where it is visible and
  the model trusts it, its painting (B, S, S, 3) elsewhere: in the scene's hole, and where the
  scene's frame differs from the target's (its person's shadow). trust_logit (B, S, S, 1)."""
  trust = jax.nn.sigmoid(trust_logit.astype(jnp.float32)) * scene[..., 3:]
  return trust * scene[..., :3] + (1.0 - trust) * painted.astype(jnp.float32)
