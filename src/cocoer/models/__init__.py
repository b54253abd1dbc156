"""Model parts: backbones, hierarchical feature extraction, V-I alignment, heads."""
