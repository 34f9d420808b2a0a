"""TFDS builder `human36m`: Human3.6M 3D pose sequences from a manually downloaded release."""

from tfds_builders.human36m.human36m_dataset_builder import Builder
from tfds_builders.human36m.human36m_dataset_builder import Human36mConfig
