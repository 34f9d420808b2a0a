"""Upstream's behavior VAE, flow and appearance VUnet in PyTorch, written from the specs.

For the conversion tests. Module and attribute names follow upstream's state-dict keys
(h36m-formats-and-upstream-checkpoints.md §3, bds_jax/upstream/vunet_mapping.py):
`b_enc.rnn`, `b_enc.mu_fn.conv.weight_v`, `decoder.n_out`,
`flow.sub_layers.<i>.coupling.s.<k>.main.<j>`, `eu.blocks.<k>.conv.conv.weight_v`, ...
"""

import math
import warnings

import torch
from torch import nn
from torch.nn import functional as F


class NormConv2d(nn.Module):
  """Weight-normalised convolution (with bias) followed by a per-channel affine."""

  def __init__(self, c_in, c_out, kernel_size=1, stride=1, padding=0):
    super().__init__()
    self.beta = nn.Parameter(torch.zeros(1, c_out, 1, 1))
    self.gamma = nn.Parameter(torch.ones(1, c_out, 1, 1))
    with warnings.catch_warnings():  # upstream's (deprecated) API gives its weight_g/_v keys
      warnings.simplefilter('ignore', FutureWarning)
      self.conv = nn.utils.weight_norm(nn.Conv2d(c_in, c_out, kernel_size, stride, padding),
                                       dim=0)

  def forward(self, x):
    return self.gamma * self.conv(x) + self.beta


class BEncoder(nn.Module):

  def __init__(self, dim, width):
    super().__init__()
    self.rnn = nn.LSTM(dim, width, batch_first=True)
    self.mu_fn = NormConv2d(width, width)
    self.std_fn = NormConv2d(width, width)

  def forward(self, x):
    _, (h, _) = self.rnn(x)
    pre = h[-1][:, :, None, None]
    return self.mu_fn(pre)[:, :, 0, 0], self.std_fn(pre)[:, :, 0, 0]


class ResidualRNNDecoder(nn.Module):

  def __init__(self, dim, width):
    super().__init__()
    self.rnn = nn.LSTMCell(dim, width)
    self.n_out = nn.Linear(width, dim)

  def forward(self, z, start, steps):
    inp, state, outs = start, (z, z), []
    for _ in range(steps):
      state = self.rnn(inp, state)
      inp = self.n_out(state[0]) + inp
      outs.append(inp)
    return torch.stack(outs, 1)


class ResidualBehaviorNet(nn.Module):

  def __init__(self, dim=51, width=1024):
    super().__init__()
    self.b_enc = BEncoder(dim, width)
    self.decoder = ResidualRNNDecoder(dim, width)


class ActNorm(nn.Module):

  def __init__(self, dim):
    super().__init__()
    self.loc = nn.Parameter(torch.zeros(1, dim, 1, 1))
    self.scale = nn.Parameter(torch.ones(1, dim, 1, 1))
    self.register_buffer('initialized', torch.tensor(1, dtype=torch.uint8))

  def forward(self, x):
    return self.scale * (x + self.loc), torch.log(self.scale.abs()).sum().expand(x.shape[0])


class BasicFullyConnectedNet(nn.Module):

  def __init__(self, dim, width, depth, tanh):
    super().__init__()
    layers = [nn.Linear(dim, width), nn.LeakyReLU(0.01)]
    for _ in range(depth):
      layers += [nn.Linear(width, width), nn.LeakyReLU(0.01)]
    layers.append(nn.Linear(width, dim))
    if tanh:
      layers.append(nn.Tanh())
    self.main = nn.Sequential(*layers)

  def forward(self, x):
    return self.main(x)


class DoubleVectorCouplingBlock2(nn.Module):

  def __init__(self, dim, width, depth):
    super().__init__()
    half = dim // 2
    self.s = nn.ModuleList([BasicFullyConnectedNet(half, width, depth, True) for _ in range(2)])
    self.t = nn.ModuleList([BasicFullyConnectedNet(half, width, depth, False) for _ in range(2)])

  def forward(self, x):
    x = x[:, :, 0, 0]
    half = x.shape[1] // 2
    logdet = 0
    for k in range(2):
      if k == 1:
        x = torch.cat([x[:, half:], x[:, :half]], 1)
      xa, xb = x[:, :half], x[:, half:]
      s = self.s[k](xa)
      x = torch.cat([xa, xb * s.exp() + self.t[k](xa)], 1)
      logdet = logdet + s.sum(1)
    return x[:, :, None, None], logdet


class Shuffle(nn.Module):

  def __init__(self, dim):
    super().__init__()
    idx = torch.randperm(dim)
    self.register_buffer('forward_shuffle_idx', idx)
    self.register_buffer('backward_shuffle_idx', torch.argsort(idx))

  def forward(self, x):
    return x[:, self.forward_shuffle_idx]


class FlowBlock(nn.Module):

  def __init__(self, dim, width, depth):
    super().__init__()
    self.norm_layer = ActNorm(dim)
    self.coupling = DoubleVectorCouplingBlock2(dim, width, depth)
    self.shuffle = Shuffle(dim)

  def forward(self, x):
    x, ld1 = self.norm_layer(x)
    x, ld2 = self.coupling(x)
    return self.shuffle(x), ld1 + ld2


class Flow(nn.Module):

  def __init__(self, dim, blocks, width, depth):
    super().__init__()
    self.sub_layers = nn.ModuleList([FlowBlock(dim, width, depth) for _ in range(blocks)])

  def forward(self, x):
    x, logdet = x[:, :, None, None], 0
    for block in self.sub_layers:
      x, ld = block(x)
      logdet = logdet + ld
    return x[:, :, 0, 0], logdet


class UnsupervisedTransformer2(nn.Module):

  def __init__(self, dim=1024, blocks=15, width=2048, depth=2):
    super().__init__()
    self.flow = Flow(dim, blocks, width, depth)

  def forward(self, x):
    return self.flow(x)


def randomize(module: nn.Module, seed: int, scale: float = 0.3, gains=(0.5, 1.5)):
  """Random weights everywhere (affine and ActNorm too), keeping buffers; scales, gammas and
  weight-norm gains uniform in `gains`."""
  g = torch.Generator().manual_seed(seed)
  lo, hi = gains
  with torch.no_grad():
    for name, p in module.named_parameters():
      if name.endswith('scale') or name.endswith('gamma') or name.endswith('weight_g'):
        p.copy_(lo + (hi - lo) * torch.rand(p.shape, generator=g))
      else:
        p.copy_(scale * torch.randn(p.shape, generator=g))
  return module


# ------------------------------------------------------------------ appearance (reference spec §4)


class VunetRNB(nn.Module):
  """x + Conv3x3(Dropout(ELU([x, Conv1x1(ELU(a))]))), or without a skip x + Conv3x3(...(x))."""

  def __init__(self, channels, a_channels=0, dropout=0.05):
    super().__init__()
    if a_channels:
      self.nin = NormConv2d(a_channels, channels)
    self.conv = NormConv2d(2 * channels if a_channels else channels, channels, 3, padding=1)
    self.dout = nn.Dropout(dropout)

  def forward(self, x, a=None):
    h = x if a is None else torch.cat([x, self.nin(F.elu(a))], 1)
    return x + self.conv(self.dout(F.elu(h)))


class Downsample(nn.Module):

  def __init__(self, c_in, c_out):
    super().__init__()
    self.down = NormConv2d(c_in, c_out, 3, stride=2, padding=1)

  def forward(self, x):
    return self.down(x)


class Upsample(nn.Module):
  """Conv3x3 to 4·C, then depth-to-space in TensorFlow's order: output (c, 2h + i, 2w + j)
  reads channel (2i + j)·C + c (not PyTorch's pixel_shuffle)."""

  def __init__(self, c_in, c_out):
    super().__init__()
    self.up = NormConv2d(c_in, 4 * c_out, 3, padding=1)

  def forward(self, x):
    y = self.up(x)
    n, c4, h, w = y.shape
    y = y.view(n, 2, 2, c4 // 4, h, w).permute(0, 3, 4, 1, 5, 2)  # (n, c, h, i, w, j)
    return y.reshape(n, c4 // 4, 2 * h, 2 * w)


def _widths(n_scales, nf_start, nf_max):
  return [min(nf_start * 2**s, nf_max) for s in range(n_scales)]


class UpPath(nn.Module):
  """EncUp / DecUp: Conv1x1, 2 blocks per scale (every output a skip), stride-2 downsampling."""

  def __init__(self, c_in, n_scales, nf_start, nf_max):
    super().__init__()
    widths = _widths(n_scales, nf_start, nf_max)
    self.nin = NormConv2d(c_in, nf_start)
    self.blocks = nn.ModuleList([VunetRNB(c) for c in widths for _ in range(2)])
    self.downs = nn.ModuleList([Downsample(a, b) for a, b in zip(widths[:-1], widths[1:])])

  def forward(self, x):
    h, skips = self.nin(x), []
    for s in range(len(self.blocks) // 2):
      for b in range(2):
        h = self.blocks[2 * s + b](h)
        skips.append(h)
      if s < len(self.downs):
        h = self.downs[s](h)
    return skips


class EncDownAlter(nn.Module):
  """The appearance posterior at the n_latent coarsest scales (sigmoid log-std)."""

  def __init__(self, nf, n_latent):
    super().__init__()
    self.nin = NormConv2d(nf, nf)
    self.blocks = nn.ModuleList()
    for _ in range(n_latent):  # per scale: h with its skip, then h with [skip, z] (no dropout)
      self.blocks.extend([VunetRNB(nf, nf), VunetRNB(nf, 2 * nf, dropout=0.0)])
    self.make_latent_params = nn.ModuleList([NormConv2d(nf, nf, 3, padding=1)
                                             for _ in range(n_latent)])
    self.make_logstds = nn.ModuleList([NormConv2d(nf, nf, 3, padding=1)
                                       for _ in range(n_latent)])
    self.ups = nn.ModuleList([Upsample(nf, nf) for _ in range(n_latent)])
    self.fin_block = VunetRNB(nf, nf)  # upstream builds it; nothing reads its output

  def forward(self, skips, sample=False):
    skips = list(skips)
    h = self.nin(skips[-1])
    means, logstds, zs = [], [], []
    for i in range(len(self.make_latent_params)):
      h = self.blocks[2 * i](h, skips.pop())
      mu = self.make_latent_params[i](h)
      logstd = torch.sigmoid(self.make_logstds[i](h))
      z = mu + logstd.exp() * torch.randn_like(mu) if sample else mu
      means.append(mu)
      logstds.append(logstd)
      zs.append(z)
      h = self.ups[i](self.blocks[2 * i + 1](h, torch.cat([skips.pop(), z], 1)))
    return means, logstds, zs


class DecDownAlter(nn.Module):
  """Walks the stickman skips back up, injecting z_i at the latent scales; Conv3x3 to RGB."""

  def __init__(self, n_scales, nf_start, nf_max, n_latent):
    super().__init__()
    widths = _widths(n_scales, nf_start, nf_max)[::-1]
    self.nin = NormConv2d(widths[0], widths[0])
    self.blocks = nn.ModuleList([VunetRNB(c, c) for c in widths for _ in range(2)])
    self.auto_blocks = nn.ModuleList([VunetRNB(c, c) for c in widths[:n_latent]])
    self.ups = nn.ModuleList([Upsample(a, b) for a, b in zip(widths[:-1], widths[1:])])
    self.out_conv = NormConv2d(widths[-1], 3, 3, padding=1)

  def forward(self, skips, zs):
    skips = list(skips)
    h = self.nin(skips[-1])
    for i in range(len(self.blocks) // 2):
      h = self.blocks[2 * i](h, skips.pop())
      if i < len(zs):
        h = self.auto_blocks[i](h, zs[i])
      h = self.blocks[2 * i + 1](h, skips.pop())
      if i < len(self.ups):
        h = self.ups[i](h)
    return self.out_conv(h)


class VunetAlter(nn.Module):
  """(appearance input, stickman) -> (image, means, logstds), NCHW; `sample=False` feeds the
  posterior means forward (the deterministic path the conversion test compares)."""

  def __init__(self, size, bottleneck_factor, box_factor, app_channels=3, nf_start=32,
               nf_max=128, n_latent=2):
    super().__init__()
    n = 1 + int(round(math.log2(size))) - bottleneck_factor
    self.eu = UpPath(app_channels, n - box_factor if app_channels > 3 else n, nf_start, nf_max)
    self.ed = EncDownAlter(nf_max, n_latent)
    self.du = UpPath(3, n, nf_start, nf_max)
    self.dd = DecDownAlter(n, nf_start, nf_max, n_latent)

  def forward(self, x, c, sample=False):
    means, logstds, zs = self.ed(self.eu(x), sample)
    return self.dd(self.du(c), zs), means, logstds


class Regressor(nn.Module):
  """The adversary: a valid conv per latent mean (listed finest first, applied to the means in
  reverse), ReLU, concatenated; Linear, ReLU, Linear to 2·J."""

  def __init__(self, latent_widths, nf_max, conv_channels, hidden, n_out):
    super().__init__()
    self.embedders = nn.ModuleList([nn.Conv2d(nf_max, conv_channels, w) for w in latent_widths])
    self.linears = nn.ModuleList([nn.Linear(len(latent_widths) * conv_channels, hidden),
                                  nn.Linear(hidden, n_out)])

  def forward(self, means):  # bottleneck first, as the VUnet returns them
    feats = [F.relu(e(m)).flatten(1) for e, m in zip(self.embedders, reversed(means))]
    return self.linears[1](F.relu(self.linears[0](torch.cat(feats, 1))))
