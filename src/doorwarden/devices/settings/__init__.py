"""Camera settings set from the web (docs/camera-settings.md): kept per camera with a
version, signed by the server and pushed to the camera's agent over its control
connection, with the agent's report of what it applied; and a fresh snapshot fetched
from the agent on demand for the zone editor (audited, never stored)."""
