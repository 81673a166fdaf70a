"""Camera settings set from the web, the agent's half (docs/camera-settings.md, "On the
camera box"): the server's signed overrides are checked (handler.py), laid over the YAML
(merge.py), applied to the running cameras without a restart and kept across restarts
(store.py). Importing this package loads no video library: `agent status` reads it.
"""
