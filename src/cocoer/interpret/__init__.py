"""Interpretation extras of the paper: Grad-CAM saliency per level before and after the
coordination (Sec. 7) and the VLM helper that drops the first-excluded level (Sec. 10.2)."""
