"""TFDS builder `human36m_frames`: Human3.6M video frames with projected 2D joints."""

from tfds_builders.human36m_frames.human36m_frames_dataset_builder import Builder
from tfds_builders.human36m_frames.human36m_frames_dataset_builder import FramesConfig

__all__ = ['Builder', 'FramesConfig']
