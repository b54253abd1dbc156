"""Console entry points (cocoer-train, cocoer-eval, cocoer-prepare, cocoer-infer, ...)."""
