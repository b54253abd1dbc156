"""The demo page (``cocoer-demo``): drop a photo, see each person's emotions.

- :mod:`cocoer.demo.models`: the model(s) to serve (checkpoint, safetensors, ONNX, the
  authors' weights, a hub folder / id) and their engines;
- :mod:`cocoer.demo.analysis`: one request without Gradio (photo -> annotated photo, table
  rows, message, ``cocoer-infer`` JSON, Grad-CAM figures);
- :mod:`cocoer.demo.boxes`: body boxes given by hand;
- :mod:`cocoer.demo.examples`: the example photos;
- :mod:`cocoer.demo.app`: the Gradio page and its serving (needs the ``demo`` extra);
- :mod:`cocoer.demo.space`: the entry of a Hugging Face Space.

Importing this package imports neither gradio nor torch.
"""
