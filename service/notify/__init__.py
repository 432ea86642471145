"""Notifications through a transactional outbox: rows written with the decision, delivered by a loop."""
