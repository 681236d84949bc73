"""Evaluation: metrics (each with its source named), the scene-boundary model, probes of frozen encoders."""
