"""The agent's MQTT bridge to the home's broker, with Home Assistant discovery
(issue 19, docs/mqtt.md): motion, person, rings, finished clips, detection and the
household's mode, published by the camera box itself; the server is not involved in
publishing. Needs `aiomqtt` (the agent-mqtt extra), imported only when `mqtt:` is set.
"""
