"""Pitchcraft: refine marketing copy with your own documents."""

__version__ = "0.1.0"
