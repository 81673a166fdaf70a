"""Household webhooks: signed (Standard Webhooks), retried, recorded, never aimed at a
private address outside development (docs/webhooks.md)."""
