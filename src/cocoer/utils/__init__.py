"""Run utilities: seeding, provenance, instantiation helpers."""
