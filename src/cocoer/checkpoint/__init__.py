"""Model files: safe reading of checkpoints and exports (:mod:`cocoer.checkpoint.safe_load`),
weight files of other projects (:mod:`~cocoer.checkpoint.weight_files`) and the safetensors
export format (:mod:`~cocoer.checkpoint.export_format`). Nothing here unpickles arbitrary
objects or follows a path stored in a file.
"""
