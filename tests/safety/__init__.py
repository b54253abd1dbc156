"""Untrusted files and outputs: safe loading, refusals, overwrite checks, fuzzing."""
