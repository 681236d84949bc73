"""Encoders, heads, objectives and small algorithms as nn.Modules and functions; torch and torchvision only."""
