"""Versioned prompt templates (Jinja2 files), shipped as package data."""
