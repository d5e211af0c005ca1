"""Feeds and article pages from a web server started by the test on 127.0.0.1."""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import ROOT, snapshot
from ingest.__main__ import main
from ingest.pipeline import Summary, ingest_sources
from ingest.sources import SourceSet
from ingest.web import Fetcher, FetchError, check_url
from rag.config import Settings, load_settings
from rag.store import open_store
from test_answer import answer
from test_app import app_on_seeds, ask, last_answer

pytestmark = pytest.mark.slow


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    location: str | None = None
    delay: float = 0.0


@dataclass
class WebServer:
    """A small web server: routes by path, ETag on every 200, a log of (path, status)."""

    routes: dict[str, Route] = field(default_factory=dict)
    log: list[tuple[str, int]] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)  # the Host header of each request
    base: str = ""

    def url(self, path: str) -> str:
        return self.base + path

    def statuses(self, path: str) -> list[int]:
        return [status for logged, status in self.log if logged == path]


@pytest.fixture
def web() -> Iterator[WebServer]:
    server_state = WebServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            server_state.hosts.append(self.headers.get("Host", ""))
            route = server_state.routes.get(self.path)
            if route is None:
                return self._send(404, b"not found", "text/plain")
            if route.delay:
                time.sleep(route.delay)
            # Each request is logged before its answer goes out, so a client that has its answer finds
            # the request in the log.
            if route.location:
                server_state.log.append((self.path, 302))
                self.send_response(302)
                self.send_header("Location", route.location)
                self.end_headers()
                return None
            etag = '"' + hashlib.sha1(route.body).hexdigest() + '"'
            if route.status == 200 and self.headers.get("If-None-Match") == etag:
                server_state.log.append((self.path, 304))
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return None
            return self._send(route.status, route.body, route.content_type, etag=etag)

        def _send(self, status: int, body: bytes, content_type: str, etag: str | None = None) -> None:
            server_state.log.append((self.path, status))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if etag:
                self.send_header("ETag", etag)
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up (a timeout test)
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server_state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server_state
    server.shutdown()
    server.server_close()


@dataclass(frozen=True)
class Entry:
    guid: str
    title: str
    text: str
    published: datetime
    updated: datetime | None = None
    link: str = ""


def story(subject: str, detail: str) -> str:
    """An entry body long enough to be the article itself (not a teaser to follow)."""
    return (
        f"{subject} {detail} Officials said the work had been planned for several years and would be "
        "reviewed again next spring. Residents interviewed on Tuesday were divided: some welcomed "
        f"{detail.lower()} while others asked who would pay for the upkeep once the first grants run out, "
        "and how long the disruption to the town centre would last."
    )


def rss(entries: list[Entry], title: str = "Harbour Gazette") -> bytes:
    items = "".join(
        f"""<item><guid isPermaLink="false">{e.guid}</guid><title>{e.title}</title><link>{e.link}</link>
        <pubDate>{format_datetime(e.published)}</pubDate><description><![CDATA[<p>{e.text}</p>]]></description>
        </item>"""
        for e in entries
    )
    return (
        f"""<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{title}</title>
        <link>http://gazette.example/</link><description>News</description>{items}</channel></rss>"""
    ).encode()


def atom(entries: list[Entry], title: str = "Valley Courier") -> bytes:
    items = "".join(
        f"""<entry><id>{e.guid}</id><title>{e.title}</title><link href="{e.link}"/>
        <published>{e.published.isoformat()}</published>
        <updated>{(e.updated or e.published).isoformat()}</updated>
        <content type="html">&lt;p&gt;{e.text}&lt;/p&gt;</content></entry>"""
        for e in entries
    )
    return (
        f"""<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">
        <title>{title}</title><id>urn:courier</id><updated>2026-11-20T00:00:00Z</updated>{items}</feed>"""
    ).encode()


def day(n: int) -> datetime:
    return datetime(2026, 11, n, 9, 30, tzinfo=UTC)


RSS_ENTRIES = [
    Entry(
        "gazette-1",
        "Tidal bridge opens",
        story("Velmora opened its tidal bridge.", "A new footpath."),
        day(2),
    ),
    Entry(
        "gazette-2",
        "Lighthouse repainted",
        story("The Korrin lighthouse was repainted.", "Red stripes."),
        day(3),
    ),
    Entry(
        "gazette-3",
        "Ferry timetable",
        story("The Oskel ferry gets a winter timetable.", "Fewer crossings."),
        day(4),
    ),
]
ATOM_ENTRIES = [
    Entry(
        "urn:courier:1",
        "Orchard harvest",
        story("Dunmere orchards report a record harvest.", "Cheap apples."),
        day(5),
    ),
    Entry(
        "urn:courier:2",
        "School roof",
        story("The Pellow school roof is replaced.", "A quieter hall."),
        day(6),
    ),
    Entry(
        "urn:courier:3", "Rail link", story("The Thorne valley rail link reopens.", "Hourly trains."), day(7)
    ),
]


def with_links(web: WebServer, entries: list[Entry]) -> list[Entry]:
    return [
        Entry(e.guid, e.title, e.text, e.published, e.updated, web.url(f"/story/{e.guid}")) for e in entries
    ]


@pytest.fixture
def web_config(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", allow_loopback=True, fetch_timeout=1.0)


def poll(config: Settings, embedder, *, feeds=(), pages=()) -> Summary:  # type: ignore[no-untyped-def]
    with open_store(config) as store:
        sources = SourceSet(feeds=tuple(feeds), pages=tuple(pages))
        return ingest_sources(sources, config=config, store=store, embedder=lambda: embedder)


def test_rss_and_atom_feeds_are_polled_incrementally(web, web_config, embedder) -> None:
    rss_entries, atom_entries = with_links(web, RSS_ENTRIES), with_links(web, ATOM_ENTRIES)
    web.routes["/rss.xml"] = Route(rss(rss_entries), "application/rss+xml")
    web.routes["/atom.xml"] = Route(atom(atom_entries), "application/atom+xml")
    feeds = (web.url("/rss.xml"), web.url("/atom.xml"))

    first = poll(web_config, embedder, feeds=feeds)
    assert (first.new, first.failures) == (6, [])
    with open_store(web_config) as store:
        stored = store.articles()
    assert set(stored) == {e.guid for e in RSS_ENTRIES + ATOM_ENTRIES}
    for entry in rss_entries + atom_entries:  # the entry's own date and link, never the fetch time
        assert stored[entry.guid].published_at == entry.published.isoformat()
        assert stored[entry.guid].url == entry.link
    assert (
        stored["gazette-1"].outlet == "Harbour Gazette" and stored["urn:courier:1"].outlet == "Valley Courier"
    )
    assert stored["urn:courier:1"].updated_at == day(5).isoformat()

    calls = embedder.calls
    second = poll(web_config, embedder, feeds=feeds)
    assert (second.new, second.changed, second.chunks_written) == (0, 0, 0)
    assert embedder.calls == calls
    assert web.statuses("/rss.xml") == [200, 304] and web.statuses("/atom.xml") == [200, 304]
    assert any("not modified" in note for note in second.notes)

    added = Entry(
        "gazette-4", "Harbour wall", story("Velmora's harbour wall is raised.", "Dry streets."), day(8)
    )
    web.routes["/rss.xml"] = Route(rss([*rss_entries, added]), "application/rss+xml")
    third = poll(web_config, embedder, feeds=feeds)
    assert (third.new, third.changed) == (1, 0) and third.unchanged == 3
    assert embedder.calls - calls == third.chunks_written > 0

    changed = Entry(
        "urn:courier:2",
        "School roof",
        story("The Pellow school roof replacement is delayed.", "Buckets in the hall."),
        day(6),
        updated=day(9),
        link=atom_entries[1].link,
    )
    web.routes["/atom.xml"] = Route(atom([atom_entries[0], changed, atom_entries[2]]), "application/atom+xml")
    fourth = poll(web_config, embedder, feeds=feeds)
    assert (fourth.new, fourth.changed) == (0, 1)
    with open_store(web_config) as store:
        texts = [h.text for h in store.keyword_search(["pellow"], k=10)]
        assert store.articles()["urn:courier:2"].updated_at == day(9).isoformat()
    assert texts and all("delayed" in text for text in texts)  # the old version's passages are gone
    state = snapshot(web_config)
    assert len(state.vectors) == len(set(state.vectors)) == len(state.passages)


ARTICLE_PAGE = """<!DOCTYPE html><html><head>
<title>Glass museum reopens | Northern Ledger</title>
<meta property="og:title" content="Glass museum reopens after flood repairs">
<meta property="og:site_name" content="Northern Ledger">
<meta name="author" content="Ines Calloway">
<meta property="article:published_time" content="2026-11-18T08:00:00+00:00">
<link rel="canonical" href="{canonical}">
<script type="application/ld+json">{{"@context": "https://schema.org", "@type": "NewsArticle",
 "headline": "Glass museum reopens after flood repairs", "datePublished": "2026-11-18T08:00:00+00:00",
 "author": {{"@type": "Person", "name": "Ines Calloway"}},
 "publisher": {{"@type": "Organization", "name": "Northern Ledger"}}}}</script>
</head><body><nav>Home | World | Culture</nav><article><h1>Glass museum reopens after flood repairs</h1>
<p>The Brackwater glass museum reopened on Monday, fourteen months after the river flooded its
lower galleries.</p>
<p>Curators said 212 of the 230 damaged pieces had been restored, and the rest would return by the summer.</p>
<p>Admission will be free for the first month, the museum's director, Oren Vasquez, told reporters.</p>
</article><footer>Leave a comment</footer></body></html>"""


def test_article_url_is_fetched_extracted_and_answerable(web, web_config, embedder) -> None:
    canonical = web.url("/culture/glass-museum")
    web.routes["/culture/glass-museum?ref=home"] = Route(ARTICLE_PAGE.format(canonical=canonical).encode())
    summary = poll(web_config, embedder, pages=[web.url("/culture/glass-museum?ref=home")])
    assert (summary.new, summary.failures) == (1, [])
    with open_store(web_config) as store:
        (stored,) = store.articles().values()
    assert stored.article_id == canonical and stored.url == canonical
    assert stored.title == "Glass museum reopens after flood repairs"
    assert (stored.outlet, stored.author) == ("Northern Ledger", "Ines Calloway")
    assert stored.published_at is not None and stored.published_at.startswith("2026-11-18")

    answered = answer(web_config, embedder, "How many damaged pieces has the glass museum restored?")
    assert "212" in answered.text and "[1]" in answered.text
    assert answered.sources.citations[0].passage.article_id == canonical


def test_bad_sources_fail_clearly_while_the_rest_is_ingested(web, tmp_path, monkeypatch, capsys) -> None:
    web.routes["/good.xml"] = Route(rss(with_links(web, RSS_ENTRIES)), "application/rss+xml")
    web.routes["/broken.xml"] = Route(b"<html><body>Not a feed at all {{{", "text/html")
    web.routes["/huge"] = Route(b"<html><body>" + b"<p>word word word</p>" * 3000 + b"</body></html>")
    web.routes["/slow"] = Route(ARTICLE_PAGE.format(canonical="").encode(), delay=3)
    web.routes["/loop-a"] = Route(location="/loop-b")
    web.routes["/loop-b"] = Route(location="/loop-a")
    for key, value in {
        "NEWSDESK_DATA_DIR": str(tmp_path / "data"),
        "NEWSDESK_ALLOW_LOOPBACK": "1",
        "NEWSDESK_FETCH_TIMEOUT": "0.5",
        "NEWSDESK_MAX_FILE_MB": "0.02",
    }.items():
        monkeypatch.setenv(key, value)
    args = [web.url(p) for p in ("/missing", "/huge", "/slow", "/loop-a")]
    args += ["--feed", web.url("/broken.xml"), "--feed", web.url("/good.xml")]
    assert main(args) == 1
    out = capsys.readouterr().out
    reasons = {
        "/missing": "404 Not Found",
        "/huge": "over the 0.02 MB limit",
        "/slow": "no answer within 0.5 s",
        "/loop-a": "more than 5 redirects",
        "/broken.xml": "not an RSS or Atom feed",
    }
    for path, reason in reasons.items():
        (line,) = [line for line in out.splitlines() if line.startswith(f"failed: {web.url(path)}:")]
        assert reason in line
    assert "3 new" in out and "5 failed" in out
    with open_store(Settings(data_dir=tmp_path / "data")) as store:
        assert set(store.articles()) == {e.guid for e in RSS_ENTRIES}


@pytest.mark.parametrize("url", ["http://10.0.0.1/feed.xml", "http://169.254.169.254/latest/meta-data/"])
def test_private_addresses_are_refused_without_a_connection(web_config, monkeypatch, url) -> None:
    attempts: list[object] = []
    real_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", lambda self, a: attempts.append(a) or real_connect(self, a))
    with Fetcher(web_config) as fetcher, pytest.raises(FetchError, match="refused: .* address"):
        fetcher.get(url)
    assert attempts == []
    # loopback is allowed by the setting, and only loopback
    assert web_config.allow_loopback and not web_config.allow_private_networks


def test_loopback_and_other_schemes_are_refused_by_default(web, tmp_path) -> None:
    web.routes["/page"] = Route(ARTICLE_PAGE.format(canonical="").encode())
    with Fetcher(Settings(data_dir=tmp_path)) as fetcher:
        with pytest.raises(FetchError, match="loopback"):
            fetcher.get(web.url("/page"))
        with pytest.raises(FetchError, match="only http and https"):
            fetcher.get("file:///etc/passwd")
    assert web.log == []


@pytest.mark.parametrize(
    ("url", "setting"),
    [
        ("http://127.0.0.1:9/feed.xml", "NEWSDESK_ALLOW_LOOPBACK"),
        ("http://[::1]:9/feed.xml", "NEWSDESK_ALLOW_LOOPBACK"),
        ("http://169.254.169.254/latest/meta-data/", "NEWSDESK_ALLOW_PRIVATE_NETWORKS"),
        ("http://192.168.1.10/feed.xml", "NEWSDESK_ALLOW_PRIVATE_NETWORKS"),
        ("http://0.0.0.0:9/feed.xml", None),
        ("http://[::]:9/feed.xml", None),
        ("http://224.0.0.1/feed.xml", None),
    ],
)
def test_each_refusal_names_the_setting_that_would_allow_it_or_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, setting: str | None
) -> None:
    with pytest.raises(FetchError) as refused:
        check_url(url, Settings(data_dir=tmp_path))
    named = set(re.findall(r"NEWSDESK_\w+", str(refused.value)))
    assert named == ({setting} if setting else set()), str(refused.value)
    if setting:  # and the setting named does allow it
        monkeypatch.setenv(setting, "1")
        assert check_url(url, load_settings()) in url
    else:  # no setting allows it
        for each in ("NEWSDESK_ALLOW_LOOPBACK", "NEWSDESK_ALLOW_PRIVATE_NETWORKS"):
            monkeypatch.setenv(each, "1")
        with pytest.raises(FetchError, match="not an address a web server has"):
            check_url(url, load_settings())


def test_sources_file_is_read_when_no_source_is_named(web, tmp_path, monkeypatch, capsys) -> None:
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "note.txt").write_text(
        "Canal lock repaired\n\nThe Ferrow canal lock reopened to boats on Friday after a month of repairs.\n"
    )
    web.routes["/atom.xml"] = Route(atom(with_links(web, ATOM_ENTRIES)), "application/atom+xml")
    (tmp_path / "sources.toml").write_text(
        f'folders = ["articles"]\nfeeds = ["{web.url("/atom.xml")}"]\n', encoding="utf-8"
    )
    monkeypatch.setenv("NEWSDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NEWSDESK_ALLOW_LOOPBACK", "1")
    assert main([]) == 0
    assert "4 new" in capsys.readouterr().out
    (tmp_path / "sources.toml").write_text('feeds = "not a list"\n', encoding="utf-8")
    assert main([]) == 2
    assert "`feeds` must be a list of strings" in capsys.readouterr().err


def test_follow_picks_up_a_new_entry_and_stops_on_sigterm(web, tmp_path) -> None:
    entries = with_links(web, RSS_ENTRIES)
    web.routes["/rss.xml"] = Route(rss(entries[:2]), "application/rss+xml")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NEWSDESK_")},
        "NEWSDESK_DATA_DIR": str(tmp_path / "data"),
        "NEWSDESK_ALLOW_LOOPBACK": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest", "--feed", web.url("/rss.xml"), "--follow", "--every", "1s"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()  # type: ignore[union-attr]

    def wait_for(text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {timeout} s")

    try:
        wait_for("poll: 2 new")
        wait_for("poll: 0 new")  # the feed answered 304
        web.routes["/rss.xml"] = Route(rss(entries), "application/rss+xml")
        wait_for("poll: 1 new")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        wait_for("Stopped.", timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
    assert 304 in web.statuses("/rss.xml")


def test_app_follows_a_feed_and_fetches_an_article(web, tmp_path, monkeypatch, ingest) -> None:
    monkeypatch.setenv("NEWSDESK_ALLOW_LOOPBACK", "1")
    app = app_on_seeds(monkeypatch, tmp_path, ingest)
    web.routes["/rss.xml"] = Route(rss(with_links(web, RSS_ENTRIES)), "application/rss+xml")
    web.routes["/museum"] = Route(ARTICLE_PAGE.format(canonical=web.url("/museum")).encode())

    app.sidebar.text_input[0].set_value(web.url("/rss.xml")).run()
    next(b for b in app.sidebar.button if b.label == "Follow feed").click().run()
    assert not app.exception
    assert "3 new" in " ".join(t.value for t in app.sidebar.text)
    assert web.url("/rss.xml") in (tmp_path / "sources.toml").read_text()
    ask(app, "Which lighthouse was repainted?")
    assert "Korrin" in last_answer(app)

    app.sidebar.text_input[0].set_value(web.url("/museum")).run()
    next(b for b in app.sidebar.button if b.label == "Fetch article").click().run()
    assert "1 new" in " ".join(t.value for t in app.sidebar.text)
    ask(app, "How many damaged pieces did the glass museum restore?")
    assert "212" in last_answer(app)
    (card,) = app.chat_message[-1].expander
    assert card.label.startswith(
        "[1] Glass museum reopens after flood repairs · Northern Ledger · 2026-11-18"
    )


def test_a_teaser_entry_is_read_from_its_page_once(web, web_config, embedder) -> None:
    page = web.url("/culture/glass-museum")
    web.routes["/culture/glass-museum"] = Route(ARTICLE_PAGE.format(canonical=page).encode())
    teaser = Entry("ledger-7", "Glass museum reopens", "The museum is open again.", day(18), link=page)
    web.routes["/rss.xml"] = Route(rss([teaser], title="Northern Ledger feed"), "application/rss+xml")
    first = poll(web_config, embedder, feeds=[web.url("/rss.xml")])
    assert (first.new, first.failures) == (1, [])
    with open_store(web_config) as store:
        stored = store.articles()["ledger-7"]  # the entry's id, date and link; the page's text
        (hit,) = store.keyword_search(["curators"], k=5)
    assert stored.url == page and stored.published_at == day(18).isoformat()
    assert stored.author == "Ines Calloway" and "212 of the 230" in hit.text

    other = Entry("ledger-8", "Orchard news", story("Dunmere sells cheap apples.", "Full baskets."), day(19))
    web.routes["/rss.xml"] = Route(rss([teaser, other], title="Northern Ledger feed"), "application/rss+xml")
    second = poll(web_config, embedder, feeds=[web.url("/rss.xml")])
    assert (second.new, second.unchanged) == (1, 1)
    assert web.statuses("/culture/glass-museum") == [200], "an entry not updated is not fetched again"


def test_the_connection_goes_to_the_address_that_was_checked(web, web_config, monkeypatch) -> None:
    """A name is resolved once: a second lookup (DNS rebinding) could point it at an internal address."""
    web.routes["/page"] = Route(ARTICLE_PAGE.format(canonical="").encode())
    port = web.base.rsplit(":", 1)[1]
    real = socket.getaddrinfo
    answers = iter([[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port)))]])

    def resolve(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host == "news.example":  # answers once; a second lookup would fail the fetch
            return next(answers)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with Fetcher(web_config) as fetcher:
        fetched = fetcher.get(f"http://news.example:{port}/page")
    assert fetched.status == 200 and b"Glass museum" in fetched.body
    assert fetched.url == f"http://news.example:{port}/page"
    assert web.statuses("/page") == [200] and web.hosts == [f"news.example:{port}"]
