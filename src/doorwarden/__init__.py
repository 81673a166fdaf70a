"""doorwarden: a self-hostable video doorbell platform with its safeguards in the code."""

__version__ = "0.1.0"
