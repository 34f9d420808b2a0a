"""The parts of the upstream-equivalent PyTorch appearance step
(benchmarks/upstream_torch_appearance.py), each timed on its own, for
benchmarks/appearance_parts.py.

The same Net / VGG / Regressor and optimizers as `time_step`, in train mode (dropout on), with
bf16 autocast around the forward passes as `time_step` has it. Parts:
  encoder            net.encode(image), backward of the sum of (means, log σ, z); upstream's
                     unused final encoder block runs, as upstream ran it
  decoder            net.decode(stickman, z) on fixed latents, backward of the output's sum
                     (to the parameters and the latents)
  vgg19              L1 over the taps of vgg(pred) and vgg(image), backward to pred
  regressor          reg_steps × (regressor forward on fixed means, loss, backward, Adam step)
  regressor_encoder  upstream's reg_steps no-grad encoder passes that make those means
  optimizer          opt.step() over the net's parameters, gradients from one whole backward
"""

from benchmarks import upstream_torch_appearance as ta

torch = ta.torch
PARTS = ('encoder', 'decoder', 'vgg19', 'regressor', 'regressor_encoder', 'optimizer')


def time_parts(size: int = 256, batch: int = 12, steps: int = 3, reg_steps: int = 5,
               bf16: bool = False, bottleneck_factor: int = 2, device: str = 'cpu') -> dict:
  """{part: median seconds} for the PARTS of one upstream-equivalent step."""
  net, vgg, reg, opt, reg_opt = ta.models(size, bottleneck_factor, device)
  net.train()
  image, stickman, others, keypoints = ta.inputs(size, batch, reg_steps, device)

  def autocast():
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16)

  with torch.no_grad(), autocast():
    means, _, zs = net.encode(image)
    pred = net.decode(stickman, zs)
  means = [m.float() for m in means]
  latents = [z.float().requires_grad_() for z in zs]
  pred = pred.float().requires_grad_()

  def encoder():
    net.zero_grad()
    with autocast():
      codes = net.encode(image)
    sum(c.float().sum() for group in codes for c in group).backward()

  def decoder():
    net.zero_grad()
    for z in latents:
      z.grad = None
    with autocast():
      out = net.decode(stickman, latents)
    out.float().sum().backward()

  def vgg19():
    pred.grad = None
    with autocast():
      ll = sum(torch.nn.functional.l1_loss(a, b) for a, b in zip(vgg(pred), vgg(image)))
    ll.float().backward()

  def regressor():
    with autocast():
      for _ in range(reg_steps):
        loss = torch.linalg.norm(reg(means) - keypoints, dim=1).mean()
        reg_opt.zero_grad()
        loss.backward()
        reg_opt.step()

  def regressor_encoder():
    with torch.no_grad(), autocast():
      for other in others:
        net.encode(other)

  out = {name: ta.median_seconds(fn, steps, device) for name, fn in
         (('encoder', encoder), ('decoder', decoder), ('vgg19', vgg19),
          ('regressor', regressor), ('regressor_encoder', regressor_encoder))}
  # The optimizer steps the parameters a whole step's backward reaches (not the unused block).
  net.zero_grad()
  with autocast():
    image_out, means, logstds = net(image, stickman)
  (image_out.float().sum() + sum(x.float().sum() for x in means + logstds)).backward()
  out['optimizer'] = ta.median_seconds(opt.step, steps, device)
  return out
