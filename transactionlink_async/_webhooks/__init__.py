"""Webhooks inside: JWS checks, signing keys, receiving, and the framework receivers."""
