"""Sealing, signatures and envelopes for clips: pure functions over bytes, no I/O.

The agent seals with these and the server and `doorwarden verify` check with the same
code, so there is one definition of what a valid clip is.
"""
