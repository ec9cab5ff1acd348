"""Proxies, TLS and what crosses them."""
