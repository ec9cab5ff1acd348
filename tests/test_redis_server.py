"""The suite's real redis-server starts, answers, and can be stopped and started again."""

from __future__ import annotations

import socket

from redis_server import RedisServer


def _ping(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16)


def test_the_suites_redis_server_answers_and_restarts_on_its_port(
    redis_server: RedisServer, redis_url: str
) -> None:
    assert redis_url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert _ping(redis_server.port).startswith(b"+PONG")
    redis_server.stop()
    try:
        _ping(redis_server.port)
        raise AssertionError("redis-server still answers after stop()")
    except OSError:
        pass
    redis_server.start()
    assert _ping(redis_server.port).startswith(b"+PONG")
