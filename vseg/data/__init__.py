"""Torch datasets and samplers, and the augmentations that draw one parameter set per shot or per clip."""
