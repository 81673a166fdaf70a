"""Doorbell presses on the agent (issue 17): sources (the CLI's socket, GPIO, MQTT,
ONVIF) -> a per-camera debounce -> a durable queue -> the server, over the live link
(HTTP when it is down for long), while the camera records a clip labelled "ring"."""
