"""The installable web app: service worker and manifest routes."""
