"""Live view: the agent's outbound stream, relayed to household members (docs/live-view.md)."""
