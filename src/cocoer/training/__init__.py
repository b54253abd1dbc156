"""Training: the LightningModule (:mod:`cocoer.training.module`), its options
(:mod:`~cocoer.training.config`, Lightning-free), the objective L_emo
(:mod:`~cocoer.training.losses`), epoch statistics (:mod:`~cocoer.training.epoch_statistics`
on the metrics of :mod:`~cocoer.training.epoch_metrics`, :mod:`~cocoer.training.vad_metrics`),
threshold calibration (:mod:`~cocoer.training.calibration`), the finiteness guard
(:mod:`~cocoer.training.finite_loss`), prediction rows (:mod:`~cocoer.training.predictions`),
the optimiser (:mod:`~cocoer.training.optim`) and the atomic checkpoint writer
(:mod:`~cocoer.training.checkpoint_io`). The entry point is :mod:`cocoer.train`.

The LightningModule and the metrics import Lightning / torchmetrics; inference and
configuration (``cocoer.configs`` imports only :mod:`~cocoer.training.config`) never do.
"""
