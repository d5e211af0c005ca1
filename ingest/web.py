"""Fetch feeds and article pages over HTTP: politely (one request at a time per host, a descriptive
User-Agent, conditional requests) and safely (http and https only, public addresses only, size, time and
redirect limits)."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from rag.config import Settings
from rag.store.database import Database

MB = 1_000_000
REDIRECTS = (301, 302, 303, 307, 308)


class FetchError(Exception):
    """A URL that gave nothing to read; the message says which and why."""


@dataclass(frozen=True)
class Fetched:
    """What a server sent: the body (empty for 304 Not Modified) and the validators for next time."""

    url: str  # after redirects
    status: int  # 200 or 304
    body: bytes
    content_type: str
    etag: str | None
    last_modified: str | None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class FetchState:
    """What a web server said about each URL (ETag, Last-Modified), remembered between runs in the store's
    catalog, so the next request can be conditional. A rebuilt store drops it with the rest."""

    def __init__(self, database: Database) -> None:
        self.db = database
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS fetch_state "
            "(url TEXT PRIMARY KEY, etag TEXT, last_modified TEXT, checked_at TEXT)"
        )

    def validators(self, url: str) -> tuple[str | None, str | None]:
        """The ETag and Last-Modified a server last sent for this URL (None, None when never fetched)."""
        row = self.db.row("SELECT etag, last_modified FROM fetch_state WHERE url = ?", (url,))
        return (row[0], row[1]) if row else (None, None)

    def save(self, validators: dict[str, tuple[str | None, str | None]]) -> None:
        """Remember validators once what they vouch for is stored (never before: a 304 would lose it)."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self.db.transaction():
            self.db.executemany(
                "INSERT INTO fetch_state (url, etag, last_modified, checked_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, "
                "last_modified = excluded.last_modified, checked_at = excluded.checked_at",
                [(url, etag, modified, now) for url, (etag, modified) in validators.items()],
            )


def is_web_url(text: str) -> bool:
    """Whether a command-line argument names a web page rather than a file."""
    return text.lower().startswith(("http://", "https://"))


def check_url(url: str, config: Settings) -> str:
    """Refuse a URL Newsdesk must not fetch, before any connection is made; return the address to use.

    Only http and https; every address the host name resolves to must be public, unless a setting allows
    loopback (127.0.0.0/8, ::1) or private networks, so a pasted URL cannot reach internal services. The
    connection goes to the address checked here: resolving the name again could give another one.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError as error:
        raise FetchError(f"not a valid URL ({error})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise FetchError(f"only http and https URLs are fetched, not {parts.scheme or 'a bare path'}")
    host = parts.hostname
    if not host:
        raise FetchError("the URL has no host name")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise FetchError(f"cannot resolve the host name {host} ({error})") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    for address in addresses:
        refusal = _refusal(address, config)
        if refusal:
            reason, setting = refusal
            hint = f"; set {setting}=1 to fetch from it" if setting else ""
            raise FetchError(f"refused: {host} is at {address}, {reason}{hint}")
    if not addresses:
        raise FetchError(f"cannot resolve the host name {host}")
    return str(addresses[0])


def _refusal(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, config: Settings
) -> tuple[str, str | None] | None:
    """Why an address may not be fetched from, with the narrowest setting that would allow it (None when
    no setting does), or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_loopback:
        allowed = config.allow_loopback or config.allow_private_networks
        return None if allowed else ("a loopback address", "NEWSDESK_ALLOW_LOOPBACK")
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return "not an address a web server has", None
    if config.allow_private_networks:
        return None
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)", "NEWSDESK_ALLOW_PRIVATE_NETWORKS"
    if address.is_private or not address.is_global:
        return "a private-network address", "NEWSDESK_ALLOW_PRIVATE_NETWORKS"
    return None


class Fetcher:
    """One HTTP client for a run; requests to one host never overlap."""

    def __init__(self, config: Settings) -> None:
        self.config = config
        self.limit = int(config.max_file_mb * MB)
        self._client = httpx.Client(
            timeout=httpx.Timeout(config.fetch_timeout),
            follow_redirects=False,  # followed here, so every hop's address is checked
            headers={"User-Agent": config.user_agent},
            # Connections go to checked addresses, named per request: none is kept for another host name.
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self._hosts: dict[str, threading.Lock] = {}
        self._hosts_lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> Fetched:
        """Fetch a URL; with validators from an earlier fetch, an unchanged resource comes back as 304."""
        current = url
        for _ in range(self.config.max_redirects + 1):
            address = check_url(current, self.config)
            headers = {}
            if etag:
                headers["If-None-Match"] = etag
            if last_modified:
                headers["If-Modified-Since"] = last_modified
            with self._host_lock(current):
                location = self._request(current, address, headers)
            if isinstance(location, Fetched):
                return location
            current = location
        raise FetchError(f"more than {self.config.max_redirects} redirects (a redirect loop?)")

    def _request(self, url: str, address: str, headers: dict[str, str]) -> Fetched | str:
        """One request to the checked address: the response, or where it redirects to."""
        deadline = time.monotonic() + 3 * self.config.fetch_timeout  # a server that trickles bytes
        parts = urlsplit(url)
        host = f"[{address}]" if ":" in address else address
        pinned = urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))
        headers = {**headers, "Host": parts.netloc.rpartition("@")[2]}
        # TLS still names (and verifies the certificate of) the host in the URL.
        extensions = {"sni_hostname": parts.hostname} if parts.scheme.lower() == "https" else {}
        try:
            with self._client.stream("GET", pinned, headers=headers, extensions=extensions) as response:
                if response.status_code in REDIRECTS and response.headers.get("location"):
                    return urljoin(url, response.headers["location"])
                if response.status_code >= 400:
                    raise FetchError(f"the server answered {response.status_code} {response.reason_phrase}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.limit:
                    raise FetchError(self._too_big(int(declared)))
                body = bytearray()
                if response.status_code != 304:
                    for piece in response.iter_bytes():
                        body += piece
                        if len(body) > self.limit:
                            raise FetchError(self._too_big(len(body), at_least=True))
                        if time.monotonic() > deadline:
                            raise FetchError(f"the server took over {3 * self.config.fetch_timeout:.0f} s")
                return Fetched(
                    url=url,
                    status=304 if response.status_code == 304 else 200,
                    body=bytes(body),
                    content_type=response.headers.get("content-type", ""),
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                )
        except httpx.TimeoutException:
            raise FetchError(
                f"no answer within {self.config.fetch_timeout:g} s (NEWSDESK_FETCH_TIMEOUT)"
            ) from None
        except httpx.HTTPError as error:
            raise FetchError(f"could not fetch ({type(error).__name__}: {error})") from None

    def _too_big(self, size: int, *, at_least: bool = False) -> str:
        more = "more than " if at_least else ""
        return (
            f"{more}{size / MB:.1f} MB, over the {self.config.max_file_mb:g} MB limit (NEWSDESK_MAX_FILE_MB)"
        )

    def _host_lock(self, url: str) -> threading.Lock:
        host = (urlsplit(url).hostname or "").lower()
        with self._hosts_lock:
            return self._hosts.setdefault(host, threading.Lock())
