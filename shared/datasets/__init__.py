"""Datasets: the built-ins (``builtin``) and the ones users upload (``uploads``)."""
