"""End-to-end clips as a member's browser opens them (static/e2e/clips.js)."""
