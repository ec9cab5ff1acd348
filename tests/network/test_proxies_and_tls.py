"""Proxies from the environment or `proxy=`, TLS with a private CA (`ssl=`), and credentials."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from transactionlink_async import (
    APIError,
    OrganizationToken,
    RetryPolicy,
    TransactionLink,
    TransportError,
)
from transactionlink_async._session import bypasses_proxy
from transactionlink_async.testing import FakeTransactionLink

from .forward_proxy import ForwardProxy

pytestmark = pytest.mark.anyio

PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)


@pytest.fixture(autouse=True)
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whatever the machine has, each test sets exactly what it needs.
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
async def tls_fake(server_context: ssl.SSLContext) -> AsyncIterator[FakeTransactionLink]:
    async with FakeTransactionLink(ssl=server_context) as server:
        yield server


@pytest.fixture
async def proxy() -> AsyncIterator[ForwardProxy]:
    async with ForwardProxy() as server:
        yield server


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def client(fake: FakeTransactionLink, **options: object) -> TransactionLink:
    return TransactionLink(
        OrganizationToken(fake.org_token),
        base_url=fake.base_url,
        **options,  # type: ignore[arg-type]
    )


def large_result(fake: FakeTransactionLink) -> str:
    execution_id = fake.create_execution()
    fake.set_large_result(execution_id, size=200_000)
    return execution_id


def storage_authority(fake: FakeTransactionLink) -> str:
    return fake.s3.base_url.split("://", 1)[1]


def api_authority(fake: FakeTransactionLink) -> str:
    return fake.base_url.split("://", 1)[1]


async def test_http_proxy_from_the_environment_carries_api_calls_and_downloads(
    fake: FakeTransactionLink,
    proxy: ForwardProxy,
    monkeypatch: pytest.MonkeyPatch,
    workdir: Path,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    execution_id = large_result(fake)
    async with client(fake) as tl:
        await tl.workflows.get(execution_id)
        done = await tl.workflows.download_result(execution_id, workdir / "r.json")
    assert done.redirected
    assert done.size == 200_000

    api = [r for r in proxy.seen if api_authority(fake) in r.target]
    storage = [r for r in proxy.seen if storage_authority(fake) in r.target]
    assert [r.target.split(api_authority(fake), 1)[1] for r in api] == [
        f"/workflows/{execution_id}",
        f"/workflows/{execution_id}/result",
    ]
    assert all(r.headers["authorization"] == fake.org_token for r in api)
    # The storage gets the pre-signed link, and no API credentials, through the proxy too.
    assert len(storage) == 1
    assert "X-Amz-Signature=" in storage[0].target
    assert "authorization" not in storage[0].headers
    assert all("authorization" not in r.headers for r in fake.s3.journal)


async def test_the_environment_is_ignored_with_trust_env_false(
    fake: FakeTransactionLink, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, workdir: Path
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    execution_id = large_result(fake)
    async with client(fake, trust_env=False) as tl:
        await tl.workflows.get(execution_id)
        await tl.workflows.download_result(execution_id, workdir / "r.json")
    assert proxy.seen == []
    assert fake.count("GET", "/workflows/*") == 1


async def test_no_proxy_names_hosts_reached_directly(
    fake: FakeTransactionLink, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, workdir: Path
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    execution_id = large_result(fake)
    async with client(fake) as tl:
        await tl.workflows.get(execution_id)
        await tl.workflows.download_result(execution_id, workdir / "r.json")
    assert proxy.seen == []


async def test_an_explicit_proxy_with_credentials_wins_over_the_environment(
    fake: FakeTransactionLink, monkeypatch: pytest.MonkeyPatch, workdir: Path
) -> None:
    async with ForwardProxy(credentials=("ada", "s3cret-pw")) as guarded, ForwardProxy() as other:
        monkeypatch.setenv("HTTP_PROXY", other.url)
        execution_id = large_result(fake)
        url = guarded.url.replace("http://", "http://ada:s3cret-pw@")
        async with client(fake, proxy=url) as tl:
            assert "s3cret-pw" not in repr(tl)
            await tl.workflows.get(execution_id)
            await tl.workflows.download_result(execution_id, workdir / "r.json")
        assert other.seen == []
        assert len(guarded.seen) == 3
        assert all(r.headers["proxy-authorization"].startswith("Basic ") for r in guarded.seen)
        # The proxy's credentials are for the proxy: none reach the API or the storage.
        assert all("proxy-authorization" not in e.headers for e in fake.journal)
        assert all("proxy-authorization" not in r.headers for r in fake.s3.journal)


async def test_a_proxy_refusing_credentials_is_a_clear_error(fake: FakeTransactionLink) -> None:
    async with ForwardProxy(credentials=("ada", "right")) as guarded:
        url = guarded.url.replace("http://", "http://ada:wrong@")
        async with client(fake, proxy=url, retry=RetryPolicy.no_retries()) as tl:
            with pytest.raises(APIError) as caught:
                await tl.workflows.get("e1")
    assert caught.value.status == 407
    assert "wrong" not in str(caught.value)


async def test_https_through_a_connect_proxy_with_a_private_ca(
    tls_fake: FakeTransactionLink,
    client_context: ssl.SSLContext,
    proxy: ForwardProxy,
    monkeypatch: pytest.MonkeyPatch,
    workdir: Path,
) -> None:
    assert tls_fake.base_url.startswith("https://")
    assert tls_fake.s3.base_url.startswith("https://")
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    execution_id = large_result(tls_fake)
    async with client(tls_fake, ssl=client_context) as tl:
        execution = await tl.workflows.get(execution_id)
        done = await tl.workflows.download_result(execution_id, workdir / "r.json")
    assert execution.id == execution_id
    assert done.size == 200_000
    assert done.md5_verified
    tunnels = {r.target for r in proxy.seen if r.method == "CONNECT"}
    assert tunnels == {api_authority(tls_fake), storage_authority(tls_fake)}
    # Inside the tunnels: the API got the token, the storage got none.
    assert tls_fake.count("GET", "/workflows/*") == 1
    assert [e.headers.get("Authorization") for e in tls_fake.requests("GET", "/workflows/*")] == [
        tls_fake.org_token
    ]
    assert tls_fake.s3.journal
    assert all("authorization" not in {k.lower() for k in r.headers} for r in tls_fake.s3.journal)


async def test_a_certificate_from_an_unknown_ca_is_refused_with_a_hint(
    tls_fake: FakeTransactionLink,
) -> None:
    async with client(tls_fake, retry=RetryPolicy.no_retries()) as tl:
        with pytest.raises(TransportError, match=r"not trusted .*ssl=") as caught:
            await tl.workflows.get("e1")
    assert caught.value.request_sent is False
    assert tls_fake.journal == []


async def test_the_ssl_context_applies_to_downloads_too(
    tls_fake: FakeTransactionLink, client_context: ssl.SSLContext, workdir: Path
) -> None:
    execution_id = large_result(tls_fake)
    async with client(tls_fake, ssl=client_context) as tl:
        done = await tl.workflows.download_result(execution_id, workdir / "r.json")
    assert done.redirected
    assert done.size == 200_000


@pytest.mark.parametrize(
    ("proxy", "error", "message"),
    [
        (3128, TypeError, "proxy must be a str URL"),
        ("socks5://ada:pw-in-url@127.0.0.1:1080", ValueError, "SOCKS proxies are not supported"),
        ("http://ada:pw-in-url@/", ValueError, "proxy must be"),
        ("http://127.0.0.1:3128/some/path", ValueError, "without a path"),
    ],
)
def test_bad_proxies_are_refused_before_anything_is_sent(
    proxy: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        TransactionLink(OrganizationToken("tot_x"), proxy=proxy)  # type: ignore[arg-type]
    assert "pw-in-url" not in str(caught.value)


@pytest.mark.parametrize("value", ["ca.pem", True, ssl.Purpose.SERVER_AUTH])
def test_ssl_must_be_an_ssl_context(value: object) -> None:
    with pytest.raises(TypeError, match=r"ssl must be an ssl\.SSLContext"):
        TransactionLink(OrganizationToken("tot_x"), ssl=value)  # type: ignore[arg-type]


def test_trust_env_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="trust_env must be a bool"):
        TransactionLink(OrganizationToken("tot_x"), trust_env="no")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypassed"),
    [
        ("127.0.0.1", 8080, "127.0.0.1", True),
        ("api.example.com", 443, "example.com", True),
        ("api.example.com", 443, ".example.com", True),
        ("example.com", 443, ".example.com", True),
        ("badexample.com", 443, "example.com", False),
        ("api.example.com", 443, "api.example.com:8443", False),
        ("api.example.com", 8443, "api.example.com:8443", True),
        ("anything", None, "*", True),
        ("API.Example.com", 443, " other.org , example.COM ", True),
        ("::1", 443, "::1", True),
        ("s3.amazonaws.com", 443, "", False),
    ],
)
def test_no_proxy_matching(host: str, port: int | None, no_proxy: str, bypassed: bool) -> None:
    assert bypasses_proxy(host, port, no_proxy) is bypassed


async def test_the_environment_is_read_once_not_per_request(
    fake: FakeTransactionLink, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution_id = fake.create_execution()
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with client(fake) as tl:
        await tl.workflows.get(execution_id)
        monkeypatch.delenv("HTTP_PROXY")
        await tl.workflows.get(execution_id)
    assert len(proxy.seen) == 2


async def test_netrc_credentials_never_reach_the_storage(
    fake: FakeTransactionLink, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    execution_id = large_result(fake)
    async with client(fake) as tl:
        await tl.workflows.get(execution_id)
        await tl.workflows.download_result(execution_id, tmp_path / "r.json")
    assert fake.s3.journal
    assert all("authorization" not in {k.lower() for k in r.headers} for r in fake.s3.journal)
    assert [e.headers["Authorization"] for e in fake.requests("GET", "/workflows/*")] == [
        fake.org_token
    ]
