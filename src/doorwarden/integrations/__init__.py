"""What a household's home talks to: webhooks (server-side; MQTT and ONVIF run on the
agent)."""
