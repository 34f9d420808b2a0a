"""An upstream-equivalent PyTorch train step of the appearance model (VUnet), for a
same-machine speed comparison with benchmarks/appearance_step.py.

Written from the reference spec's description (§4.1–4.4, experiment `cvbae`), not from
upstream's code: weight-normalised convolutions with a per-channel affine, residual blocks
with skip inputs and dropout 0.05, stride-2 downsampling, subpixel upsampling (torch's
pixel_shuffle order: the order does not change the cost), the appearance encoder's two latent
scales with sigmoid log-σ, the posture U-Net and the decoder; the VGG19 perceptual loss (six L1
terms up to relu5_2, random weights: the cost is the same); the keypoint regressor. One step is
what upstream did: `reg_steps` regressor Adam steps, each on the means of another image that
the appearance encoder computed under no_grad, then one Adam step of the model on likelihood +
γ·KL − w·min(L_reg, 1.2), where the adversarial term has no gradient (upstream's bug, §7.11).
Upstream's three unused encoder modules after the last latent scale (§4.2, our README) are run,
as upstream ran them.
"""

import time

import numpy as np

try:
  import torch
  from torch import nn
  from torch.nn import functional as F
except ImportError:  # optional: pip install -r benchmarks/requirements.txt
  torch = None

VGG_LAYERS = ((3, 64), (64, 64), 'pool', (64, 128), (128, 128), 'pool', (128, 256), (256, 256),
              (256, 256), (256, 256), 'pool', (256, 512), (512, 512), (512, 512), (512, 512),
              'pool', (512, 512), (512, 512))
VGG_TAPS = (1, 4, 8, 13, 17)  # conv indices (in VGG_LAYERS, pools included) of relu1_2 ... 5_2


def available() -> bool:
  return torch is not None


if torch is not None:

  class NormConv(nn.Module):

    def __init__(self, cin, cout, k, stride=1):
      super().__init__()
      self.conv = nn.utils.parametrizations.weight_norm(
          nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2))
      self.gamma = nn.Parameter(torch.ones(1, cout, 1, 1))
      self.beta = nn.Parameter(torch.zeros(1, cout, 1, 1))

    def forward(self, x):
      return self.gamma * self.conv(x) + self.beta

  class RNB(nn.Module):
    """y = x + Conv3x3(Dropout(ELU([x, Conv1x1(ELU(a))])))  (without a: of ELU(x))."""

    def __init__(self, c, a_channels=0, dropout=0.05):
      super().__init__()
      self.skip = NormConv(a_channels, c, 1) if a_channels else None
      self.out = NormConv(2 * c if a_channels else c, c, 3)
      self.drop = nn.Dropout(dropout)

    def forward(self, x, a=None):
      h = x if a is None else torch.cat([x, self.skip(F.elu(a))], 1)
      return x + self.out(self.drop(F.elu(h)))

  class Up(nn.Module):

    def __init__(self, cin, cout):
      super().__init__()
      self.conv = NormConv(cin, 4 * cout, 3)

    def forward(self, x):
      return F.pixel_shuffle(self.conv(x), 2)

  class UpPath(nn.Module):
    """EncUp / DecUp: Conv1x1, then per scale 2 RNBs (outputs kept) and a stride-2 conv."""

    def __init__(self, cin, channels):
      super().__init__()
      self.inp = NormConv(cin, channels[0], 1)
      self.blocks = nn.ModuleList(nn.ModuleList([RNB(c), RNB(c)]) for c in channels)
      self.downs = nn.ModuleList(NormConv(a, b, 3, stride=2)
                                 for a, b in zip(channels[:-1], channels[1:]))

    def forward(self, x):
      h, skips = self.inp(x), []
      for i, (b1, b2) in enumerate(self.blocks):
        h = b1(h)
        skips.append(h)
        h = b2(h)
        skips.append(h)
        if i < len(self.downs):
          h = self.downs[i](h)
      return skips

  class Net(nn.Module):

    def __init__(self, size=256, bottleneck_factor=2, nf_start=32, nf_max=128, n_latent=2):
      super().__init__()
      n = 1 + int(np.log2(size)) - bottleneck_factor
      ch = [min(nf_start * 2**i, nf_max) for i in range(n)]
      self.ch, self.n_latent = ch, n_latent
      self.eu, self.du = UpPath(3, ch), UpPath(3, ch)
      rev = ch[::-1]
      self.ed_in = NormConv(rev[0], rev[0], 1)
      self.ed_a = nn.ModuleList(RNB(rev[i], rev[i]) for i in range(n_latent + 1))
      self.ed_mu = nn.ModuleList(NormConv(rev[i], rev[i], 3) for i in range(n_latent))
      self.ed_ls = nn.ModuleList(NormConv(rev[i], rev[i], 3) for i in range(n_latent))
      self.ed_b = nn.ModuleList(RNB(rev[i], 2 * rev[i]) for i in range(n_latent))
      self.ed_up = nn.ModuleList(Up(rev[i], rev[i + 1]) for i in range(n_latent))
      self.dd_in = NormConv(rev[0], rev[0], 1)
      self.dd_a = nn.ModuleList(RNB(c, c) for c in rev)
      self.dd_z = nn.ModuleList(RNB(rev[i], rev[i]) for i in range(n_latent))
      self.dd_b = nn.ModuleList(RNB(c, c) for c in rev)
      self.dd_up = nn.ModuleList(Up(a, b) for a, b in zip(rev[:-1], rev[1:]))
      self.out = NormConv(ch[0], 3, 3)

    def encode(self, x):
      skips = self.eu(x)
      h = self.ed_in(skips[-1])
      means, logstds, zs = [], [], []
      for i in range(self.n_latent):
        h = self.ed_a[i](h, skips.pop())
        mu, ls = self.ed_mu[i](h), torch.sigmoid(self.ed_ls[i](h))
        z = mu + ls.exp() * torch.randn_like(mu)
        means.append(mu)
        logstds.append(ls)
        zs.append(z)
        h = self.ed_up[i](self.ed_b[i](h, torch.cat([skips.pop(), z], 1)))
      self.ed_a[self.n_latent](h, skips.pop())  # upstream's unused final block
      return means, logstds, zs

    def forward(self, app, stickman):
      means, logstds, zs = self.encode(app)
      return self.decode(stickman, zs), means, logstds

    def decode(self, stickman, zs):
      """The posture stream and the decoder: the image from the stickman and the latents."""
      skips = self.du(stickman)
      h = self.dd_in(skips[-1])
      for i in range(len(self.ch)):
        h = self.dd_a[i](h, skips.pop())
        if i < self.n_latent:
          h = self.dd_z[i](h, zs[i])
        h = self.dd_b[i](h, skips.pop())
        if i < len(self.dd_up):
          h = self.dd_up[i](h)
      return self.out(h)

  class Regressor(nn.Module):

    def __init__(self, latent_sizes, channels=128, joints=17):
      super().__init__()
      self.convs = nn.ModuleList(nn.Conv2d(channels, 128, s) for s in latent_sizes)
      self.mlp = nn.Sequential(nn.Linear(128 * len(latent_sizes), 128), nn.ReLU(),
                               nn.Linear(128, 2 * joints))

    def forward(self, means):
      h = torch.cat([F.relu(c(m)).flatten(1) for c, m in zip(self.convs, means)], 1)
      return self.mlp(h)

  class VGG(nn.Module):

    def __init__(self):
      super().__init__()
      self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in
                                 (l for l in VGG_LAYERS if l != 'pool'))
      for p in self.parameters():
        p.requires_grad_(False)

    def forward(self, x):
      mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
      std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
      h = ((x + 1) / 2 - mean) / std
      taps, convs = [h], iter(self.convs)
      for i, layer in enumerate(VGG_LAYERS):
        h = F.max_pool2d(h, 2) if layer == 'pool' else F.relu(next(convs)(h))
        if i in VGG_TAPS:
          taps.append(h)
      return taps


def models(size: int = 256, bottleneck_factor: int = 2, device: str = 'cpu'):
  """(net, vgg, regressor, net's Adam, regressor's Adam) as upstream's step uses them (seed 0)."""
  torch.manual_seed(0)
  net, vgg = Net(size, bottleneck_factor).to(device), VGG().to(device)
  bottleneck = size // 2**(len(net.ch) - 1)
  reg = Regressor([bottleneck * 2**(net.n_latent - 1 - i)
                   for i in range(net.n_latent)][::-1]).to(device)
  opt = torch.optim.Adam(net.parameters(), 5e-4, betas=(0.5, 0.9))
  reg_opt = torch.optim.Adam(reg.parameters(), 1e-3)
  return net, vgg, reg, opt, reg_opt


def time_step(size: int = 256, batch: int = 12, steps: int = 3, reg_steps: int = 5,
              bf16: bool = False, bottleneck_factor: int = 2, device: str = 'cpu') -> float:
  """Median seconds per upstream-equivalent train step on torch `device` (e.g. 'cuda'; bf16:
  autocast to bfloat16 on that device)."""
  net, vgg, reg, opt, reg_opt = models(size, bottleneck_factor, device)
  image, stickman, others, keypoints = inputs(size, batch, reg_steps, device)
  gamma = 0.0

  def step():
    nonlocal gamma
    with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
      for other in others:
        with torch.no_grad():
          means = net.encode(other)[0]
        loss_r = torch.linalg.norm(reg([m.float() for m in means]) - keypoints, dim=1).mean()
        reg_opt.zero_grad()
        loss_r.backward()
        reg_opt.step()
      pred, means, logstds = net(image, stickman)
      ll = sum(F.l1_loss(a, b) for a, b in zip(vgg(pred), vgg(image)))
      kl = torch.stack([(-ls + 0.5 * (torch.exp(2 * ls) + mu**2)).flatten(1).sum(1).mean()
                        - 0.5 * mu[0].numel() for mu, ls in zip(means, logstds)]).mean()
      with torch.no_grad():  # upstream's bug: the adversarial term has no gradient
        adv = torch.linalg.norm(reg([m.float() for m in means]) - keypoints, dim=1).mean()
      loss = ll + gamma * kl - 4.0 * adv.clamp(max=1.2)
    opt.zero_grad()
    loss.float().backward()
    opt.step()
    gamma = max(0.0, gamma + 1e-5 * (kl.item() - 1000.0))

  net.train()
  return median_seconds(step, steps, device)


def inputs(size: int, batch: int, reg_steps: int, device: str):
  """(image, stickman, the regressor's reg_steps other images, keypoints): random, drawn after
  models()' seed."""
  image = (torch.rand(batch, 3, size, size) * 2 - 1).to(device)
  stickman = (torch.rand(batch, 3, size, size) * 2 - 1).to(device)
  others = [torch.roll(image, i, 0) for i in range(reg_steps)]  # the per-sample stack
  return image, stickman, others, torch.rand(batch, 34).to(device)


def median_seconds(fn, steps: int, device: str = 'cpu') -> float:
  """Median wall time of fn() over `steps` calls after one untimed call."""
  fn()
  times = []
  for _ in range(steps):
    _synchronize(device)
    start = time.perf_counter()
    fn()
    _synchronize(device)
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def _synchronize(device: str):
  if str(device).startswith('cuda'):
    torch.cuda.synchronize(device)
