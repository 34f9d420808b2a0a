"""TFDS builder of the procedural synthetic_motion dataset."""

from tfds_builders.synthetic_motion.synthetic_motion_dataset_builder import Builder

__all__ = ['Builder']
