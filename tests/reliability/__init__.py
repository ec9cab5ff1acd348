"""The reliability suite: seeded fault injection and malformed answers over the fake server."""
