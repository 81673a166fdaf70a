"""Transparency: what the public may know about this instance (the coverage map)."""
