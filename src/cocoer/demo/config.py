"""How the demo page is served (the defaults of ``cocoer-demo``'s serving options)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeConfig:
    """How the page is served.

    Attributes:
        host: address to bind (127.0.0.1: this machine only; 0.0.0.0 on a Space).
        port: TCP port.
        max_file_size: largest upload (Gradio's syntax: ``"20mb"``, or bytes).
        queue_size: requests waiting at most (more are refused with "queue full").
        concurrency: requests processed at once (the rest wait in the queue).
    """

    host: str = "127.0.0.1"
    port: int = 7860
    max_file_size: str | int = "20mb"
    queue_size: int = 64
    concurrency: int = 1
