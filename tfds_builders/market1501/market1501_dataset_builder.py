"""market1501: Market-1501 person crops stretched to 128×128 with 18 keypoints (index.p archive).

The originals are 128×64 (height × width); like upstream, they are resized to 128×128 without
keeping the aspect ratio, and the normalised joints are scaled by 128 on both axes. See
tfds_builders/index_builder.py for the features.
"""

from bds_jax.imaging import index_images
from tfds_builders import index_builder as base


class Builder(base.IndexImagesBuilder):
  """Market-1501 from upstream's prepared archive."""

  BUILDER_CONFIGS = base.configs(128)
  DATASET = index_images.MARKET
  MANUAL_DOWNLOAD_INSTRUCTIONS = base.instructions(
      DATASET, 'market', '128×64 (height × width) JPEGs named <person>_c<camera>s<...>.jpg')
