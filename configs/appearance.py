"""Appearance (shape-and-posture) model: the VUnet of reference spec §4, experiment `cvbae`.

  python train.py --config=configs/appearance.py[:preset] --workdir=runs/appearance

Presets (after the colon):
  (none), synthetic  synthetic_people at 128 px with Market's sizes (bottleneck and box factor
                     1), the spec's training settings, and what the demo measured to help:
                     another frame's part crops as the appearance input, σ in (0.05, 1),
                     person weighting, the patch discriminator, and the part warp and
                     blend on person-only crops, and the room branch with its scene. Hours on
                     a GPU.
  demo               the CPU quick start (`make demo`): synthetic_people's 64 px `demo` config,
                     the in-plane part crops of another frame of the person as the appearance
                     input (the person only), sampled into the target pose and mixed into
                     the output per pixel (part warp and blend, not in the paper), the room
                     painted from the stickman and copied from another frame of the camera
                     (room branch and scene, new), a narrower
                     model (16-64 channels), person weighting, a patch discriminator, 1 500
                     steps at a higher learning rate (about 15 min on 2 CPU cores): each
                     person in their own colours and stripes (docs/appearance.md).
  smoke              tiny model on the 64 px `small` config, 30 steps: for tests.
  h36m, deepfashion, market   the spec's per-dataset values (§4.4) on `human36m_frames`
                     (256 px video frames, 17 joints), `deepfashion` (256 px, 18 joints) and
                     `market1501` (128 px, 18 joints). Their builders need the downloaded
                     files: build them first (docs/datasets.md, "Training the appearance
                     model on DeepFashion, Market-1501 and Human3.6M") and pass
                     --config.data.data_dir, or give --config.data.manual_dir to build on
                     first use.

Every field can be overridden, e.g. --config.loss.vgg_weights=vgg19_features.npz (see
bds_jax/models/vgg.py for making that file). Without VGG weights the likelihood is pixel L1 +
SSIM, not upstream's perceptual loss: the trainer logs that loudly and records it in
config.json as loss.likelihood.
"""

import ml_collections

PRESETS = ('synthetic', 'demo', 'smoke', 'h36m', 'deepfashion', 'market')


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  preset = (arg or '').strip()
  if preset and preset not in PRESETS:
    raise ValueError(f'Unknown preset {preset!r} for configs/appearance.py; choose one of '
                     f'{PRESETS} or none (configs/appearance.py).')
  c = ml_collections.ConfigDict()
  c.trainer = 'appearance'
  c.preset = preset
  c.seed = 42                        # upstream seed

  c.data = ml_collections.ConfigDict()
  c.data.name = 'synthetic_people'   # image datasets: bds_jax/data/images.py IMAGE_DATASETS
  c.data.builder_config = ''         # TFDS builder config ('' = the builder's default, 128 px)
  c.data.data_dir = ''               # TFDS data dir ('' = $TFDS_DATA_DIR or ~/tensorflow_datasets)
  c.data.prepare = 'auto'            # 'auto': build when missing; 'never'
  c.data.manual_dir = ''             # downloaded files of deepfashion, market1501,
                                     # human36m_frames (see tfds_builders/<name>/README.md)
  c.data.train_split = 'train'
  c.data.eval_split = 'test'
  c.data.batch_size = 12             # global batch
  c.data.sampling = 'pid'            # 'pid': upstream's per-person sampler; 'epoch': shuffled epochs
  c.data.inplane_normalize = False   # appearance input: the image (False) or its 10 part crops
  c.data.box_factor = 1              # part crops S / 2^box_factor; the model's box factor too
  c.data.crop_geometry = 'ours'      # how part crops are cut: 'ours', or 'upstream' (its
                                     # transposed limbs, mirrored head; converted weights)
  c.data.appearance_source = 'self'  # 'self': the target's own image (upstream); 'other': another
                                     # frame of the same person
  c.data.mask_room = False           # the appearance input shows the person only: the pixels
                                     # outside a silhouette drawn from its keypoints are black
                                     # (new; docs/appearance.md)
  c.data.num_threads = 2
  c.data.prefetch = 4

  c.model = ml_collections.ConfigDict()
  c.model.image_size = 128           # must equal the dataset's
  c.model.bottleneck_factor = 1      # n_scales = 1 + log2(S) - bottleneck_factor
  c.model.nf_start = 32
  c.model.nf_max = 128
  c.model.n_latent_scales = 2
  c.model.dropout_rate = 0.05
  c.model.sigmoid_logstd = True      # log σ through a sigmoid into logstd_range, as upstream
                                     # (the paper is silent); False: log σ = conv, unbounded
                                     # (on the 64 px demo the KL blew up: NaN within 15 steps
                                     # once, 5e9 by step 100 another time)
  c.model.logstd_range = (0.0, 1.0)  # log σ = lo + (hi - lo)·sigmoid(conv); (0, 1) is upstream
  c.model.num_keypoints = 17         # the adversary predicts 2·J values (18 for DF / Market)
  c.model.regressor_channels = 128
  c.model.regressor_hidden = 128
  c.model.compute_dtype = 'float32'  # or 'bfloat16': bf16 convolutions, float32 params/optimizer
  c.model.part_warp = False          # also sample the appearance frame's part crops into the
                                     # target pose, beside the stickman (needs part crops; not
                                     # in the paper: docs/appearance.md)
  c.model.part_blend = False         # and let the decoder mix those warped parts into its output
                                     # per pixel, beside its own painting (needs part_warp)
  c.model.room_branch = False        # and the room painted from the stickman alone: the image
                                     # away from the body, a candidate of that mix near it, so
                                     # the code cannot move the room (needs part_blend; new)
  c.model.room_scene = False         # and the room copied from a scene: another frame of the
                                     # target's camera with its person cut out, where visible
                                     # (needs room_branch; new, docs/appearance.md)
  c.model.disc_channels = 32         # the patch discriminator (used when loss.gan_weight or
  c.model.disc_layers = 3            # loss.feature_matching_weight > 0): first width, strided convs

  c.loss = ml_collections.ConfigDict()
  c.loss.vgg_weights = ''            # npz of VGG19 features; '' = pixel L1 + SSIM (not upstream)
  c.loss.likelihood = ''             # set by the trainer: what the run used ('vgg19' or 'l1_ssim')
  c.loss.likelihood_weights = (1.0,) * 6  # input, relu1_2 ... relu5_2
  c.loss.ll_weight = 1.0
  c.loss.ssim_weight = 1.0           # the no-VGG fallback only
  c.loss.n_init_batches = 4          # KL enters after this many updates
  c.loss.info_budget = 1000.0        # I_KL
  c.loss.gamma_step = 1e-5           # dual-ascent step size
  c.loss.adversary_weight = 1.0      # gamma_C [P]: 1 (H3.6M, Market), 5 (DeepFashion); the code's
                                     # 4 never acted (its adversary had no gradient, spec §4.3)
  c.loss.adversary_clamp = 0.0       # the adversarial term is min(L_reg, clamp); 0: the chance
                                     # level, the error of predicting the training keypoints'
                                     # mean pose (computed before training, stored in the run
                                     # as adversary_chance.json), so the encoder is never paid
                                     # for making the regressor worse than chance. Upstream's
                                     # 1.2 never acted (its adversary had no gradient).
  c.loss.regressor_steps = 5         # regressor updates per main step
  c.loss.person_weight = 1.0         # the likelihood counts the person's pixels (a silhouette
                                     # drawn from the target's keypoints, any dataset) this many
                                     # times; 1: every pixel alike (upstream)
  c.loss.gan_weight = 0.0            # conditional patch discriminator, hinge loss (new; 0: none,
                                     # as upstream); bds_jax/models/discriminator.py
  c.loss.feature_matching_weight = 0.0  # L1 between its features of output and image

  c.optim = ml_collections.ConfigDict()
  c.optim.lr = 5e-4                  # decays linearly to 0 over whole epochs covering num_steps
  c.optim.b1 = 0.5
  c.optim.b2 = 0.9
  c.optim.regressor_lr = 1e-3        # Adam with PyTorch's default betas (0.9, 0.999)
  c.optim.disc_lr = 2e-4             # the discriminator's Adam (constant rate)
  c.optim.disc_b1 = 0.5
  c.optim.disc_b2 = 0.999

  c.num_steps = 150_000              # upstream end_iteration
  c.log_every_steps = 100
  c.eval_every_steps = 5000
  c.eval_batches = 8                 # test batches per evaluation
  c.checkpoint_every_steps = 5000
  c.keep_checkpoints = 3
  c.figure_every_steps = 5000        # image grid (appearance | stickman | reconstruction | transfer)
  c.figure_examples = 6
  c.progress_bar = True

  c.evals = ml_collections.ConfigDict()
  c.evals.eval = dict(type='batch_means', fn='eval_step', data='eval', prefix='eval/',
                      inputs=('image', 'stickman', 'appearance', 'appearance_keypoints',
                              'paired_appearance'),
                      every_steps=c.get_ref('eval_every_steps'))
  c.evals.figure = dict(type='appearance_figure', data='figure', prefix='',
                        examples=c.get_ref('figure_examples'),
                        every_steps=c.get_ref('figure_every_steps'))

  if preset in ('', 'synthetic', 'demo'):  # measured on the demo (docs/appearance.md)
    c.data.appearance_source = 'other'
    c.data.inplane_normalize = True
    c.model.logstd_range = (-3.0, 0.0)
    c.loss.person_weight = 6.0
    c.loss.gan_weight = 0.02
    c.loss.feature_matching_weight = 0.2
    # Upstream's 1 000 nats were set for σ >= 1. With σ allowed below 1 the code starts near
    # 2 600 nats; on the demo dual ascent's first 50 steps pushed it under 1 000 and it went on
    # collapsing (270 nats, σ ≈ 0.8 by step 200, γ back at 0). With room to spare it settles
    # at σ ≈ 0.17 and 2 400-5 400 nats: code effect 0.125 -> 0.166 at 1 500 steps
    # (docs/appearance.md).
    c.loss.info_budget = 20_000.0
    # The part crops sampled into the target pose, and mixed into the output per pixel: at
    # 1 500 demo steps the people come out in their own colours and stripes
    # (docs/appearance.md, rows 5-6).
    c.model.part_warp = True
    c.model.part_blend = True
    # The input shows the person only, so that neither the code nor the warp carries the
    # room of the appearance frame into another's (the room moved 0.018 -> 0.011, row 7).
    c.data.mask_room = True
    # The room painted from the stickman alone away from the body, so that the code cannot
    # move it there (the room moved 0.013 -> 0.005, row 9).
    c.model.room_branch = True
    # And copied, where it can be seen, from another frame of the same camera with its person
    # cut out: the room's own floor and light instead of an average room (row 10).
    c.model.room_scene = True
  if preset == 'demo':
    c.data.builder_config = 'demo'   # 64 px, 9 600 train / 3 840 test frames
    c.model.image_size = 64
    c.model.bottleneck_factor = 2    # 5 scales (64 ... 4); latents 4x4 and 8x8
    c.model.nf_start = 16
    c.model.nf_max = 64
    c.model.regressor_channels = 64
    c.model.regressor_hidden = 64
    # (Upstream's 5 regressor updates per step, not 2: with 2 a fresh probe read some posture
    # out of the codes, 0.446 against the mean pose's 0.477; with 5, 0.469, at no measurable
    # cost in speed; docs/appearance.md.)
    # The L1 + SSIM likelihood (no VGG weights) is ~100x smaller than upstream's perceptual
    # loss; with upstream's dual-ascent step one KL spike made the multiplier swamp it. A
    # smaller step keeps the budget as a bound without that.
    c.loss.gamma_step = 1e-7
    # Above: encode another frame of the same person (upstream: the target frame), so the code
    # is asked for appearance, not the target's posture: what transfer needs.
    # and its 10 in-plane part crops (32 px), not the whole frame, as upstream did on
    # DeepFashion and Market: every sequence has its own camera and room, and from the whole
    # frame the code also carried the room. Measured after 1 500 steps (500 test pairs,
    # evaluate.py's code effect): swapping two people's inputs moved the person's pixels by
    # L1 0.134 with crops against 0.088 without (their truths differ by 0.337), the room's
    # by 0.005 against 0.023, and a fresh probe found no posture in the code (0.475 against
    # 0.477 for the mean pose; 0.323 without crops).
    # (Above, measured at 1 500 steps: posterior σ in (0.05, 1) instead of upstream's (1, e),
    # the person's pixels counted 6 times and a patch discriminator together moved the code
    # effect on the person from 0.094 to 0.125 and the sharpness from 0.47 to 0.60 of the
    # truth's; colours and patterns still came out muted until the part warp and blend.)
    c.optim.lr = 1e-3
    c.num_steps = 1500
    c.log_every_steps = 50
    c.eval_every_steps = 500
    c.checkpoint_every_steps = 500
    c.figure_every_steps = 500
  elif preset == 'smoke':
    c.data.builder_config = 'small'  # 64 px, 40 train / 16 test frames
    c.data.batch_size = 4
    c.data.inplane_normalize = True  # exercises the part-crop path: 30 channels at 32 px
    c.model.part_warp = True         # and the part warp, blend and room branch (with its
                                     # scene), on person-only crops
    c.model.part_blend = True
    c.data.mask_room = True
    c.model.room_branch = True
    c.model.room_scene = True
    c.model.image_size = 64
    c.model.bottleneck_factor = 3    # 4 scales (64 ... 8); latents 8x8 and 16x16 (XLA:CPU compile
                                     # time grows with the scales)
    c.model.nf_start = 4
    c.model.nf_max = 8
    c.model.regressor_channels = 8
    c.model.regressor_hidden = 8
    c.loss.regressor_steps = 2
    c.loss.info_budget = 50.0
    c.loss.gamma_step = 1e-3
    c.optim.lr = 2e-3
    c.num_steps = 30
    c.log_every_steps = 10
    c.eval_every_steps = 15
    c.eval_batches = 2
    c.checkpoint_every_steps = 10
    c.figure_every_steps = 0
    c.figure_examples = 4
    c.progress_bar = False
  elif preset == 'h36m':             # spec §1.8 / §4.4: 256 px frames, image appearance input
    c.data.name = 'human36m_frames'
    c.data.box_factor = 2
    c.model.image_size = 256
    c.model.bottleneck_factor = 2
  elif preset == 'deepfashion':
    c.data.name = 'deepfashion'
    c.data.inplane_normalize = True
    c.data.box_factor = 2
    c.model.image_size = 256
    c.model.bottleneck_factor = 2
    c.model.num_keypoints = 18
    c.loss.adversary_weight = 5.0
    c.loss.regressor_steps = 10
    c.num_steps = 200_000
  elif preset == 'market':
    c.data.name = 'market1501'
    c.data.inplane_normalize = True
    c.model.num_keypoints = 18
  return c
