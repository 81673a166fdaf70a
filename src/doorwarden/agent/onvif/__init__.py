"""ONVIF on the agent: finding cameras (WS-Discovery), reading their profiles and stream
URIs, writing a configuration stub, and their events as triggers (docs/onvif.md).

`onvif-zeep-async` (the `agent-ring` extra) is imported only by device.py, pullpoint.py
and events.py, and only when they run: discovery and the stub need nothing but lxml.
"""
