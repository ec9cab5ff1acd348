"""Seeing what the client does: request/answer events for users, and OpenTelemetry spans."""
