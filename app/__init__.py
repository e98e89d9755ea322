"""Sitelabel: on-premises annotation for medical images, video and ML datasets."""

__version__ = "0.1.0"
