"""Signed webhooks: endpoints told of final records (README, "Webhooks")."""
