"""Shared basics: atomic writes and safe reading of files, the one torch reader, limits on
stored configs, provenance, the environment check, agreement across DDP ranks."""
