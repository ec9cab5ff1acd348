"""A real redis-server for the suite: a free loopback port, no persistence, stopped at the end."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest

INSTALL_HINT = (
    "install it with `apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis`"
)


#: A suite killed by its time limit (or by hand) never reaches `stop()`: where util-linux's
#: setpriv is at hand, the server is sent SIGTERM when the suite's process goes away.
_SETPRIV = shutil.which("setpriv") if sys.platform == "linux" else None
_DIES_WITH_US: tuple[str, ...] = (_SETPRIV, "--pdeathsig", "TERM", "--") if _SETPRIV else ()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process on 127.0.0.1; `stop()` and `start()` again keep its port."""

    def __init__(self, binary: str, *, options: Sequence[str] = ()) -> None:
        self.binary = binary
        #: Further redis-server options, e.g. ("--rename-command", "SMISMEMBER", "").
        self.options = tuple(options)
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.mkdtemp(prefix="tl-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self._process is not None:
            return
        self._process = subprocess.Popen(  # noqa: S603 - a fixed binary and our own arguments
            [
                *_DIES_WITH_US,
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir,
                "--protected-mode",
                "yes",
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            sock.recv(16)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


def find_redis_server() -> str | None:
    return shutil.which("redis-server")


@contextmanager
def running_redis() -> Iterator[RedisServer]:
    """A started RedisServer, or a skip (outside CI) / failure (in CI) naming how to install it."""
    binary = find_redis_server()
    if binary is None:
        message = f"these tests need a real redis-server: {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = RedisServer(binary)
    server.start()
    try:
        yield server
    finally:
        server.close()
