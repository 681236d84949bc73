"""One trainer for every pre-training method: distributed set-up, loop, AMP, checkpoints, resume, logs."""
