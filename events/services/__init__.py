"""Business logic of events and webhooks."""
