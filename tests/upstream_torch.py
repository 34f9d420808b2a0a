"""The upstream behavior VAE and flow in PyTorch, written from the specs (for conversion tests).

Module and attribute names follow upstream's state-dict keys
(h36m-formats-and-upstream-checkpoints.md §3): `b_enc.rnn`, `b_enc.mu_fn.conv.weight_v`,
`decoder.n_out`, `flow.sub_layers.<i>.coupling.s.<k>.main.<j>`, ...
"""

import warnings

import torch
from torch import nn


class NormConv2d(nn.Module):
  """Weight-normalised 1x1 convolution with a per-channel affine."""

  def __init__(self, c_in, c_out):
    super().__init__()
    self.beta = nn.Parameter(torch.zeros(1, c_out, 1, 1))
    self.gamma = nn.Parameter(torch.ones(1, c_out, 1, 1))
    with warnings.catch_warnings():  # upstream's (deprecated) API gives its weight_g/_v keys
      warnings.simplefilter('ignore', FutureWarning)
      self.conv = nn.utils.weight_norm(nn.Conv2d(c_in, c_out, 1), dim=0)

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


def randomize(module: nn.Module, seed: int, scale: float = 0.3):
  """Random weights everywhere (affine and ActNorm too), keeping buffers."""
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, p in module.named_parameters():
      if name.endswith('scale') or name.endswith('gamma') or name.endswith('weight_g'):
        p.copy_(0.5 + torch.rand(p.shape, generator=g))
      else:
        p.copy_(scale * torch.randn(p.shape, generator=g))
  return module
