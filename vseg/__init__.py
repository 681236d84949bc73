"""vseg: self-supervised video representation learning (SCRL, HiCo) and video scene segmentation."""

__version__ = "0.1.0"
