"""Using a trained model: inference, ONNX, saliency, VLM, demo, hub folders, converter."""
