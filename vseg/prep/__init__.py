"""The prep stages: files into files (synthetic data, puzzles, clips, shots), on one shared skeleton."""
