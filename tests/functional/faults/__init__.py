"""Faults end to end, with real processes: disks that fill, on the server and the camera."""
