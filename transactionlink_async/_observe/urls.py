"""Pure helpers naming a call for events and spans, without anything secret in them."""

from __future__ import annotations

import re

import yarl

__all__ = ["execution_id_of", "route_of", "url_without_query"]

# The API's paths, with the one variable segment each may hold (an execution id or a kid).
_ROUTES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"/workflows/(?!run$)([^/]+)"), "/workflows/{id}"),
    (re.compile(r"/workflows/([^/]+)/cancel"), "/workflows/{id}/cancel"),
    (re.compile(r"/workflows/([^/]+)/result"), "/workflows/{id}/result"),
    (re.compile(r"/auth/webhooks/key/([^/]+)"), "/auth/webhooks/key/{kid}"),
)
_FIXED = frozenset(
    {"/auth/authorize", "/auth/refresh", "/cases", "/parameters", "/workflows", "/workflows/run"}
)


def url_without_query(url: yarl.URL) -> str:
    """The URL without query, fragment or user info: a pre-signed link's signature is in
    its query, a proxy's password in its user info."""
    return str(url.with_user(None).with_query(None).with_fragment(None))


def route_of(path: str) -> str | None:
    """The API route a path belongs to (`/workflows/{id}`), None for an unknown path."""
    if path in _FIXED:
        return path
    for pattern, route in _ROUTES:
        if pattern.fullmatch(path):
            return route
    return None


def execution_id_of(path: str) -> str | None:
    """The execution id a `/workflows/{id}...` path names, else None."""
    if path.startswith("/workflows/") and path != "/workflows/run":
        for pattern, _ in _ROUTES[:3]:
            match = pattern.fullmatch(path)
            if match:
                return match.group(1)
    return None
