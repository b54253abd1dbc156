"""Training: runs, resume, DDP, numerics of the step, experiments, sweeps, W&B."""
