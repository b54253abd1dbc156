"""CUDA-only tests (``make test-gpu``)."""
