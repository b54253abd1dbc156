"""Training: the LightningModule (:mod:`cocoer.training.module`), the objective L_emo
(:mod:`~cocoer.training.losses`), epoch statistics (:mod:`~cocoer.training.epoch_metrics`,
:mod:`~cocoer.training.vad_metrics`), threshold calibration
(:mod:`~cocoer.training.calibration`) and the atomic checkpoint writer
(:mod:`~cocoer.training.checkpoint_io`). The entry point is :mod:`cocoer.train`.

This package imports Lightning; inference and configuration never import it.
"""
