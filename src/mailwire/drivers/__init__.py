"""Drivers run conversation flows over a transport: they move bytes and nothing else."""
