"""Persistence: the engine, tables and migrations (``db``), one store per resource (``stores``), exemplars and fits.

Imports ``schemas`` and the layers below it only; never workflows, batches or HTTP code.
"""
