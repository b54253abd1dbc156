"""Exports of a trained model for sharing and deployment."""
