"""The Gradio page of ``cocoer-demo`` (imports gradio: the ``demo`` extra).

:func:`build_app` lays out the page around a :class:`cocoer.demo.analysis.DemoAnalyser`;
:func:`launch` serves it on 127.0.0.1 by default with a request queue and an upload size
limit. Nothing is fetched from elsewhere: analytics are off and the theme uses the
system's fonts (no web fonts). The page's API endpoint is ``/analyse``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

import gradio as gr
import pandas as pd

from cocoer.demo.analysis import TABLE_HEADERS, DemoAnalyser, DemoOutput, DemoRequest
from cocoer.demo.boxes import add_corner
from cocoer.demo.config import ServeConfig
from cocoer.detect import BACKENDS
from cocoer.infer.thresholds import THRESHOLD_MODES

log = logging.getLogger(__name__)

#: The page's API name of the analysis (``client.predict(..., api_name=API_NAME)``).
API_NAME = "/analyse"
#: The inputs of :data:`API_NAME`, in order.
API_INPUTS = (
    "photo",
    "boxes",
    "only_hand_boxes",
    "thresholds",
    "detector",
    "engine",
    "saliency",
)


def photo_input(**kwargs: Any) -> gr.Image:
    """A ``gr.Image`` (``type="filepath"``) whose upload reaches the analysis as the
    uploaded file's path, not decoded: a non-image or a decompression bomb is then refused
    by cocoer's reader with its message on the page, not inside Gradio's own decoding.

    (The method is replaced on the instance: a subclass of a Gradio component makes Gradio
    write a ``.pyi`` stub next to this module.)
    """
    image = gr.Image(type="filepath", **kwargs)
    decode = image.preprocess

    def preprocess(payload: Any) -> Any:
        if payload is None or getattr(payload, "path", None) is None:  # data URL: Gradio's
            return decode(payload)
        return str(payload.path)

    image.preprocess = preprocess  # type: ignore[method-assign]
    return image


def local_theme() -> gr.themes.Base:
    """Gradio's default theme with the system's fonts (no web fonts fetched)."""
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "monospace"],
    )


def _outputs(out: DemoOutput) -> tuple[Any, ...]:
    table = pd.DataFrame(out.rows, columns=list(TABLE_HEADERS))
    return out.image, table, out.message, out.json_path, out.saliency


def request_handler(analyser: DemoAnalyser) -> Any:
    """The function behind :data:`API_NAME`: page inputs -> page outputs, never raising."""

    def analyse(
        photo: str | None,
        boxes: str,
        only_hand_boxes: bool,
        thresholds: str,
        detector: str,
        engine: str,
        saliency: bool,
    ) -> tuple[Any, ...]:
        req = DemoRequest(
            photo,
            boxes or "",
            bool(only_hand_boxes),
            str(thresholds),
            detector,
            engine,
            bool(saliency),
        )
        try:
            return _outputs(analyser(req))
        except Exception as exc:  # the page gets one line; the log gets the traceback
            log.exception("demo request failed")
            first = (str(exc).splitlines() or [""])[0]
            return _outputs(DemoOutput(f"Internal error ({type(exc).__name__}): {first}"))

    return analyse


def _click(pending: list[float] | None, boxes: str, evt: gr.SelectData) -> tuple[Any, str]:
    """A click on the result photo: a box corner (see :func:`add_corner`)."""
    x, y = evt.index[:2]
    return add_corner(pending, boxes or "", float(x), float(y))


def _input_column(engines: list[str], examples: Sequence[str | Path]) -> dict[str, Any]:
    """Photo, controls, hand boxes and buttons (components by name)."""
    c: dict[str, Any] = {}
    c["photo"] = photo_input(
        sources=["upload", "webcam", "clipboard"], label="Photo", elem_id="photo"
    )
    with gr.Row():
        c["thresholds"] = gr.Dropdown(
            choices=[*THRESHOLD_MODES, "0.5"],
            value="calibrated",
            allow_custom_value=True,
            label="Threshold rule (calibrated | demo | a number in (0, 1))",
        )
        c["detector"] = gr.Radio(list(BACKENDS), value="auto", label="Detector")
        c["engine"] = gr.Radio(engines, value=engines[0], label="Engine")
    c["boxes"] = gr.Textbox(
        lines=2,
        label="Boxes by hand (x1, y1, x2, y2 per line; or click two corners on the result)",
        elem_id="boxes",
    )
    with gr.Row():
        c["only_hand_boxes"] = gr.Checkbox(False, label="only my boxes (no detection)")
        c["saliency"] = gr.Checkbox(False, label="Grad-CAM per level (PyTorch, slower)")
    with gr.Row():
        c["clear"] = gr.Button("Clear boxes")
        c["run"] = gr.Button("Analyse", variant="primary", elem_id="analyse")
    if examples:
        gr.Examples([[str(p)] for p in examples], inputs=[c["photo"]], label="Examples")
    return c


def _output_column() -> list[Any]:
    """[annotated photo, table, message, JSON file, Grad-CAM gallery] (the API's order)."""
    message = gr.Textbox(label="Message", interactive=False, elem_id="message")
    annotated = gr.Image(
        label="Result (click two corners to add a box)",
        interactive=False,
        elem_id="annotated",
        format="png",
    )
    table = gr.Dataframe(
        headers=list(TABLE_HEADERS),
        interactive=False,
        wrap=True,
        label="Persons",
        elem_id="persons",
    )
    result_json = gr.File(label="cocoer-infer JSON", elem_id="json")
    gallery = gr.Gallery(label="Grad-CAM before / after refinement", columns=2)
    return [annotated, table, message, result_json, gallery]


def build_app(
    analyser: DemoAnalyser, examples: Sequence[str | Path] = (), title: str = "CocoER demo"
) -> gr.Blocks:
    """The page: photo and controls on the left, results on the right."""
    analyse = request_handler(analyser)
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(
            f"## {title}\nModel: `{analyser.models.label}`. Drop a photo: every person's "
            "emotions, what each level (context, body, head) predicted, the V-I pseudo label "
            "and the order in which the levels were excluded."
        )
        pending = gr.State(None)
        with gr.Row():
            with gr.Column(scale=2):
                c = _input_column(analyser.models.engine_names, examples)
            with gr.Column(scale=3):
                outputs = _output_column()
        inputs = [c[name] for name in API_INPUTS]
        boxes = c["boxes"]
        c["run"].click(analyse, inputs, outputs, api_name=API_NAME.lstrip("/"))
        c["photo"].upload(analyse, inputs, outputs, api_visibility="private")
        outputs[0].select(_click, [pending, boxes], [pending, boxes], api_visibility="private")
        c["clear"].click(lambda: (None, ""), None, [pending, boxes], api_visibility="private")
    return app


def launch(app: gr.Blocks, cfg: ServeConfig, block: bool = True, **kwargs: Any) -> gr.Blocks:
    """Serve ``app`` with a queue and an upload limit; ``block=False`` returns at once
    (the server runs in a thread; ``app.close()`` stops it)."""
    app.queue(max_size=cfg.queue_size, default_concurrency_limit=cfg.concurrency)
    app.launch(
        server_name=cfg.host,
        server_port=cfg.port,
        max_file_size=cfg.max_file_size,
        theme=local_theme(),
        prevent_thread_lock=not block,
        share=False,
        ssr_mode=False,
        show_error=False,
        **kwargs,
    )
    return app
