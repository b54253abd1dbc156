"""The project itself: code shape, lock, environment, metadata, notebook, CLIs."""
