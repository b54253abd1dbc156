"""The data layer: dataset readers, windows, generated data, detection, prepare."""
