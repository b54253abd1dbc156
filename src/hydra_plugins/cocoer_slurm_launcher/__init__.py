"""cocoer's SLURM launcher for Hydra (``hydra/launcher=submitit_slurm``); Hydra accepts
launchers only from the ``hydra_plugins`` namespace package, hence this package."""
