"""Entry of a Hugging Face Space (or any host that runs ``python app.py``).

A Space's ``app.py`` is two lines (docs/demo.md)::

    from cocoer.demo.space import main
    main()

The model comes from environment variables (the Space's settings): ``COCOER_DEMO_CKPT``,
``COCOER_DEMO_ONNX`` or ``COCOER_DEMO_HUB`` (a path relative to the Space's folder, or a
hub id). The server binds to ``GRADIO_SERVER_NAME`` (Spaces set 0.0.0.0) and
``GRADIO_SERVER_PORT`` when set, else to 127.0.0.1:7860.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

#: Environment variable -> cocoer-demo option.
ENV_OPTIONS = {
    "COCOER_DEMO_CKPT": "--ckpt",
    "COCOER_DEMO_ONNX": "--onnx",
    "COCOER_DEMO_HUB": "--hub",
    "COCOER_DEMO_DEVICE": "--device",
    "GRADIO_SERVER_NAME": "--host",
    "GRADIO_SERVER_PORT": "--port",
}


def argv_from_env(env: Mapping[str, str]) -> list[str]:
    """The ``cocoer-demo`` arguments the environment asks for."""
    argv: list[str] = []
    for var, flag in ENV_OPTIONS.items():
        if env.get(var):
            argv += [flag, env[var]]
    return argv


def main() -> None:
    """Run ``cocoer-demo`` with the environment's options (exit status 2 on a bad model)."""
    from cocoer.demo.cli import main as demo_main

    sys.exit(demo_main(argv_from_env(os.environ)))


if __name__ == "__main__":
    main()
