"""The resident's screens: camera grid and event timeline."""
