"""Models in the Hugging Face Hub's layout: a folder (or a Hub repository) holding
``model.safetensors`` (the net's weights), ``config.json`` (everything needed to use them,
as literal data) and ``README.md`` (the model card).

Reading side only (the writer is :mod:`cocoer.export.hub`):

- :mod:`cocoer.hub.config`: the ``config.json`` schema, built from a model's config and
  checked on reading (unknown or executable keys, interpolations, local weight paths, a
  newer cocoer: refused in one line);
- :mod:`cocoer.hub.weights`: the safetensors header checked against the config before any
  model is built;
- :mod:`cocoer.hub.load`: a folder or a repo id (``ORG/NAME[@REVISION]``, through
  ``huggingface_hub``'s cache) to a ready model.

``cocoer.from_pretrained(NAME)`` returns a :class:`cocoer.infer.Predictor` built from it.
"""

from cocoer.hub.config import CARD_NAME, CONFIG_NAME, HUB_FORMAT, WEIGHTS_NAME

__all__ = ["CARD_NAME", "CONFIG_NAME", "HUB_FORMAT", "WEIGHTS_NAME"]
