"""Benchmarks: the SDK side by side with raw aiohttp and httpx, against the fake server."""
