"""deepfashion: DeepFashion In-shop images at 256 px with 18 COCO keypoints (index.p archive).

See tfds_builders/index_builder.py for the features and bds_jax/imaging/index_images.py for how
the files are read and checked.
"""

from bds_jax.imaging import index_images
from tfds_builders import index_builder as base


class Builder(base.IndexImagesBuilder):
  """DeepFashion (In-shop Clothes Retrieval) from upstream's prepared archive."""

  BUILDER_CONFIGS = base.configs(256)
  DATASET = index_images.DEEPFASHION
  MANUAL_DOWNLOAD_INSTRUCTIONS = base.instructions(
      DATASET, 'deepfashion', '256×256 JPEGs of the In-shop Clothes Retrieval benchmark')
