"""An upstream-equivalent PyTorch train step, for a same-machine speed comparison.

Written from the reference spec's description of the upstream behavior model (§2.1–2.2), not
from its code: nn.LSTM encoder over the 50-frame window (final hidden state -> weight-normalised
mu / log-sigma heads with a per-unit affine), LSTMCell decoder run autoregressively with a
residual output layer, 5 Adam steps of the posture regressor on the (detached) posterior mean,
then one Adam step of the cVAE on reconstruction + KL - adversarial term. Upstream also runs
the paired window through the network every step and discards the result (spec §1.7); that
forward pass is included, as it is part of upstream's step time. Detaching mu for the regressor
steps makes this, if anything, cheaper than upstream.
"""

import time

import numpy as np

try:
  import torch
  from torch import nn
except ImportError:  # optional: pip install -r benchmarks/requirements.txt
  torch = None


def available() -> bool:
  return torch is not None


if torch is not None:

  class _NormLinear(nn.Module):

    def __init__(self, width):
      super().__init__()
      self.lin = nn.utils.parametrizations.weight_norm(nn.Linear(width, width))
      self.gamma = nn.Parameter(torch.ones(width))
      self.beta = nn.Parameter(torch.zeros(width))

    def forward(self, x):
      return self.gamma * self.lin(x) + self.beta

  class _Net(nn.Module):

    def __init__(self, dim, width):
      super().__init__()
      self.enc = nn.LSTM(dim, width, batch_first=True)
      self.mu = _NormLinear(width)
      self.logstd = _NormLinear(width)
      self.cell = nn.LSTMCell(dim, width)
      self.out = nn.Linear(width, dim)

    def forward(self, x):
      _, (h, _) = self.enc(x)
      mu, logstd = self.mu(h[0]), self.logstd(h[0])
      z = mu + logstd.exp() * torch.randn_like(mu)
      inp, state, outs = x[:, 0], (z, z), []
      for _ in range(x.shape[1]):
        state = self.cell(inp, state)
        inp = self.out(state[0]) + inp
        outs.append(inp)
      return torch.stack(outs, 1), mu, logstd

  class _Regressor(nn.Module):

    def __init__(self, width, dim, frames):
      super().__init__()
      self.code = nn.Sequential(nn.Linear(width, 1024), nn.ReLU(), nn.Linear(1024, 512),
                                nn.ReLU(), nn.Linear(512, 256), nn.ReLU())
      self.time = nn.Sequential(nn.Linear(frames, 128), nn.ReLU())
      self.head = nn.Linear(384, dim)
      self.frames = frames

    def forward(self, mu, t):
      c = torch.zeros(mu.shape[0], self.frames, device=mu.device)
      c[:, t] = 1.0
      return self.head(torch.cat([self.code(mu), self.time(c)], -1))


def time_step(width: int = 1024, batch: int = 64, frames: int = 50, dim: int = 51,
              steps: int = 5, regressor_steps: int = 5, device: str = 'cpu') -> float:
  """Median seconds per upstream-equivalent train step (on torch `device`, e.g. 'cuda')."""
  torch.manual_seed(0)
  net, reg = _Net(dim, width).to(device), _Regressor(width, dim, frames).to(device)
  opt, reg_opt = torch.optim.Adam(net.parameters(), 1e-4), torch.optim.Adam(reg.parameters(), 1e-4)
  x = torch.randn(batch, frames + 1, dim).to(device)
  paired = torch.randn(batch, frames + 1, dim).to(device)
  gamma = 0.0

  def step():
    nonlocal gamma
    inp, target = x[:, :-1], x[:, 1:]
    x_hat, mu, logstd = net(inp)
    with torch.no_grad():
      net(paired[:, :-1])  # upstream's unused paired-window pass
    for _ in range(regressor_steps):
      t = int(torch.randint(frames, ()))
      loss_psi = ((reg(mu.detach(), t) - inp[:, t]) ** 2).mean()
      reg_opt.zero_grad()
      loss_psi.backward()
      reg_opt.step()
    adv = ((reg(mu, t) - inp[:, t]) ** 2).mean()
    kl = (-logstd + 0.5 * (logstd.exp() ** 2 + mu ** 2)).sum(-1).mean() - 0.5 * width
    loss = 2.5 * ((x_hat - target) ** 2).mean() + gamma * kl - 0.01 * (
        adv.clamp(max=0.45) + adv.clamp(max=0.70))
    opt.zero_grad()
    loss.backward()
    opt.step()
    gamma = max(0.0, gamma + 1e-5 * (kl.item() - 100.0))

  step()  # warm-up
  times = []
  for _ in range(steps):
    _synchronize(device)
    start = time.perf_counter()
    step()
    _synchronize(device)
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def _synchronize(device: str):
  if str(device).startswith('cuda'):
    torch.cuda.synchronize(device)
