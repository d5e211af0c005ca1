"""Reading article files: what a reader sees of each article, and a clear reason for each bad input."""

from __future__ import annotations

import codecs
import gzip
import json
import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ingest.articles import read_articles
from ingest.fields import parse_published
from ingest.sources import SourceFile, discover_files
from ingest.text import Failure, normalize_text
from rag.config import Settings, load_settings
from rag.documents import Article

SEED = Path(__file__).resolve().parents[1] / "seeds" / "000_c957ac075bc0a49a.txt"
BODY = (
    "A strong earthquake shook the coastal city on Tuesday morning, damaging several buildings "
    "and cutting power to thousands of homes.\n\n"
    "Officials said rescue teams were searching the rubble and that schools would stay closed."
)
PAGE = """<!DOCTYPE html>
<html><head>
<title>Quake hits coastal city | Daily Planet</title>
<meta property="og:site_name" content="Daily Planet">
<meta name="author" content="Lois Lane">
<meta property="article:published_time" content="2024-03-05T10:30:00+01:00">
<link rel="canonical" href="https://www.planet.example/2024/03/05/quake">
</head><body>
<nav><a href="/">Home</a> <a href="/world">World</a></nav>
<article><h1>Quake hits coastal city</h1>
<p>A strong earthquake shook the coastal city on Tuesday morning, damaging several buildings and
cutting power to thousands of homes.</p>
<p>Officials said rescue teams were searching the rubble and that schools would stay closed.</p>
</article>
<footer><p>Leave a comment</p></footer>
</body></html>"""
RTQA_RECORD = {
    "doc_id": "http://www.cnn.com/2022/02/07/investing/spirit-frontier-airlines-merger/index.html",
    "url": "http://www.cnn.com/2022/02/07/investing/spirit-frontier-airlines-merger/index.html",
    "title": None,
    "publish_date": "2022/02/07",
    "authors": ["Chris Isidore", "Matt Egan"],
    "text": "New York CNN Business —\n\nSpirit and Frontier Airlines on Monday announced a merger.",
}
SYNONYM_RECORD = {
    "link": "https://news.example/story",
    "headline": "Budget passes",
    "body": "The budget passed the lower house late on Friday after a long debate.",
    "published_at": "Tue, 05 Mar 2024 10:30:00 GMT",
    "source": {"id": "wire", "name": "Example Wire"},
    "byline": "Ann Reporter",
}


def read(path: Path, config: Settings | None = None) -> list[Article | Failure]:
    """Read every article file under a folder (or one file) the way ingest does."""
    config = config or load_settings()
    return [item for source in discover_files([path]) for item in read_articles(source, config=config)]


def only_article(items: list[Article | Failure]) -> Article:
    """Return the single result, which must be an article."""
    assert len(items) == 1 and isinstance(items[0], Article), items
    return items[0]


def failures_by_file(items: list[Article | Failure]) -> dict[str, str]:
    """Map each failed file (or record) name to its reason."""
    return {Path(item.source).name: item.reason for item in items if isinstance(item, Failure)}


# --- plain text and Markdown -------------------------------------------------------------------------


def test_seed_article_has_no_invented_metadata_and_loses_its_footer(tmp_path: Path) -> None:
    folder = tmp_path / "seeds"
    folder.mkdir()
    shutil.copy(SEED, folder / SEED.name)

    article = only_article(read(folder))

    original = SEED.read_text(encoding="utf-8")
    assert article.article_id == "seeds/000_c957ac075bc0a49a.txt"
    assert article.source == str(folder / SEED.name)
    assert (article.title, article.outlet, article.author, article.url, article.published_at) == (None,) * 5
    assert article.text.startswith("U.S. President Donald Trump announced on Thursday that Kazakhstan")
    assert "Leave a comment" not in article.text
    assert article.text == original.replace("Leave a comment", "").strip()
    assert article.warnings == ()


def test_front_matter_gives_title_outlet_authors_url_and_date(tmp_path: Path) -> None:
    (tmp_path / "quake.md").write_text(
        "---\n"
        "title: Quake hits coastal city\n"
        "source: Daily Planet\n"
        "author: [Lois Lane, Clark Kent]\n"
        "url: https://planet.example/quake\n"
        "date: 2024-03-05\n"
        "---\n\n" + BODY + "\n",
        encoding="utf-8",
    )

    article = only_article(read(tmp_path))

    assert article.article_id == "https://planet.example/quake"
    assert article.title == "Quake hits coastal city"
    assert article.outlet == "Daily Planet"
    assert article.author == "Lois Lane, Clark Kent"
    assert article.url == "https://planet.example/quake"
    assert article.published_at == datetime(2024, 3, 5)
    assert article.text == BODY


def test_front_matter_time_keeps_its_timezone(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(
        "---\npublished: '2024-03-05T10:30:00+01:00'\n---\n" + BODY, encoding="utf-8"
    )

    article = only_article(read(tmp_path))

    assert article.published_at == datetime(2024, 3, 5, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    assert article.published_iso == "2024-03-05T10:30:00+01:00"
    assert article.title is None and article.article_id == f"{tmp_path.name}/a.md"


def test_bbc_style_first_line_is_the_headline(tmp_path: Path) -> None:
    (tmp_path / "001.txt").write_text(
        "Ad sales boost Time Warner profit\n\n"
        "Quarterly profits at US media giant TimeWarner jumped 76% to $1.13bn (£600m).\n\n"
        "The firm benefited from sales of high-speed internet connections.\n",
        encoding="utf-8",
    )

    article = only_article(read(tmp_path))

    assert article.title == "Ad sales boost Time Warner profit"
    assert article.text.startswith("Quarterly profits at US media giant")
    assert "Ad sales boost" not in article.text


def test_markdown_heading_is_the_headline(tmp_path: Path) -> None:
    (tmp_path / "note.md").write_text("# Quake hits coastal city\n" + BODY, encoding="utf-8")

    article = only_article(read(tmp_path))

    assert article.title == "Quake hits coastal city"
    assert article.text == BODY


@pytest.mark.parametrize(
    "first_line",
    [
        "Officials said on Tuesday that the quake damaged buildings.",  # a sentence
        "LONDON —",  # a dateline
        "By Lois Lane",  # a byline
    ],
)
def test_unmarked_first_line_is_not_made_a_headline(tmp_path: Path, first_line: str) -> None:
    (tmp_path / "a.txt").write_text(first_line + "\n\n" + BODY, encoding="utf-8")

    article = only_article(read(tmp_path))

    assert article.title is None
    assert article.text.startswith(first_line)


def test_boilerplate_lines_are_dropped_from_the_end_and_adverts_anywhere() -> None:
    text = (
        "First paragraph.\r\n\r\nADVERTISEMENT\r\n\r\n\r\nSecond paragraph.   \n"
        "Read more about this\n\nShare this article\nComments (12)\nLeave a reply\n"
    )

    assert normalize_text(text) == "First paragraph.\n\nSecond paragraph."


def test_text_ending_in_an_ordinary_short_line_is_kept() -> None:
    assert normalize_text("The vote was close.\n\nSubscribers pay more.") == (
        "The vote was close.\n\nSubscribers pay more."
    )


# --- HTML ------------------------------------------------------------------------------------------------


def test_html_page_gives_main_text_and_page_metadata(tmp_path: Path) -> None:
    (tmp_path / "quake.html").write_text(PAGE, encoding="utf-8")

    article = only_article(read(tmp_path))

    assert article.article_id == "https://www.planet.example/2024/03/05/quake"
    assert article.url == "https://www.planet.example/2024/03/05/quake"
    assert article.title == "Quake hits coastal city"
    assert article.outlet == "Daily Planet"
    assert article.author == "Lois Lane"
    assert article.published_at == datetime(2024, 3, 5, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    assert article.text.startswith("A strong earthquake shook the coastal city")
    assert "rescue teams were searching the rubble" in article.text
    assert "Leave a comment" not in article.text
    assert "Home" not in article.text


def test_html_page_without_metadata_leaves_it_unknown(tmp_path: Path) -> None:
    (tmp_path / "bare.htm").write_text(f"<html><body><p>{BODY}</p></body></html>", encoding="utf-8")

    article = only_article(read(tmp_path))

    assert article.article_id == f"{tmp_path.name}/bare.htm"
    assert (article.outlet, article.author, article.url, article.published_at) == (None,) * 4


def test_html_in_a_declared_charset_is_decoded_in_it(tmp_path: Path) -> None:
    head = '<head><meta charset="iso-8859-1"></head>'
    page = f"<html>{head}<body><p>{BODY} Le café est fermé.</p></body></html>"
    (tmp_path / "cafe.html").write_bytes(page.encode("latin-1"))

    article = only_article(read(tmp_path))

    assert "Le café est fermé." in article.text
    assert article.warnings == ()


# --- JSON and JSON Lines ---------------------------------------------------------------------------------


def test_jsonl_with_realtimeqa_fields(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text(json.dumps(RTQA_RECORD) + "\n", encoding="utf-8")

    article = only_article(read(tmp_path))

    assert article.article_id == RTQA_RECORD["doc_id"]
    assert article.url == RTQA_RECORD["url"]
    assert article.title == "spirit-frontier-airlines-merger"  # no headline: the words of its address
    assert article.author == "Chris Isidore, Matt Egan"
    assert article.published_at == datetime(2022, 2, 7)
    assert article.outlet == "cnn.com"  # no outlet field: the host a reader sees
    assert article.source == f"{tmp_path / 'corpus.jsonl'}#1"
    assert article.text.startswith("New York CNN Business —\n\nSpirit and Frontier")


# CNN's video-player ad-feedback form, on made-up pages below
AD_FORM = (
    "1. How relevant is this ad to you?\n\nVideo player was slow to load content Video content never loaded "
    "Ad froze or did not finish loading Other issues"
)


def test_video_page_with_only_an_ad_form_is_stored_as_its_headline(tmp_path: Path) -> None:
    records = [
        {"doc_id": f"https://news.example/{n}", "title": title, "text": AD_FORM}
        for n, title in enumerate(["Walmart cuts clothing prices", "Sprite drops its green bottle"])
    ]
    records.append(
        {"doc_id": "https://news.example/story", "text": f"The council met.\n\n{AD_FORM}\n\nIt voted."}
    )
    records.append(
        {"doc_id": "https://news.example/nothing", "text": AD_FORM}
    )  # no headline: nothing to keep
    recall = "https://news.example/2022/06/15/business/ford-recall/index.html"
    records.append({"doc_id": recall, "url": recall, "text": AD_FORM})  # its address names the story
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")

    walmart, sprite, story, nothing, video = read(tmp_path)

    assert isinstance(walmart, Article) and isinstance(sprite, Article)
    # each keeps its own headline as text, so they are not duplicates of one another
    assert walmart.text == "Walmart cuts clothing prices" and sprite.text == "Sprite drops its green bottle"
    assert "headline alone" in walmart.warnings[0]
    assert isinstance(story, Article) and story.text == "The council met.\n\nIt voted."
    assert isinstance(nothing, Failure) and "no text" in nothing.reason
    assert isinstance(video, Article) and video.title == video.text == "ford-recall"


@pytest.mark.parametrize(
    ("url", "headline"),
    [
        ("https://www.cnn.com/2022/06/12/media/squid-game-season-2/index.html", "squid-game-season-2"),
        (
            "https://www.usatoday.com/story/money/2019/03/18/retire-abroad-tax-surprises/541879002/",
            "retire-abroad-tax-surprises",
        ),
        ("https://www.cnn.com/videos/us/2022/09/20/desantis-vineyard-probe.cnn", "desantis-vineyard-probe"),
        ("https://news.example/article?id=12345", None),
        ("https://news.example/2022/06/12/", None),
    ],
)
def test_an_article_without_a_headline_is_named_by_its_address(
    tmp_path: Path, url: str, headline: str
) -> None:
    (tmp_path / "story.md").write_text(f"---\nurl: {url}\n---\n{BODY}", encoding="utf-8")

    assert only_article(read(tmp_path)).title == headline


def test_json_list_with_field_synonyms(tmp_path: Path) -> None:
    plain = {"content": "A record with text and nothing else, not even a link."}
    (tmp_path / "feed.json").write_text(json.dumps([SYNONYM_RECORD, plain]), encoding="utf-8")

    first, second = read(tmp_path)

    assert isinstance(first, Article) and isinstance(second, Article)
    assert first.article_id == "https://news.example/story"
    assert first.title == "Budget passes"
    assert first.outlet == "Example Wire"
    assert first.author == "Ann Reporter"
    assert first.published_at == datetime(2024, 3, 5, 10, 30, tzinfo=UTC)
    assert first.text == SYNONYM_RECORD["body"]
    assert second.article_id == f"{tmp_path.name}/feed.json#2"
    assert second.source == f"{tmp_path / 'feed.json'}#2"
    assert (second.title, second.outlet, second.url, second.published_at) == (None,) * 4


def test_json_object_and_articles_wrapper(tmp_path: Path) -> None:
    (tmp_path / "one.json").write_text(json.dumps({"id": "story-7", "article": BODY}), encoding="utf-8")
    (tmp_path / "wrapped.json").write_text(json.dumps({"articles": [RTQA_RECORD]}), encoding="utf-8")

    one, wrapped = read(tmp_path)

    assert isinstance(one, Article) and one.article_id == "story-7"
    assert one.source == str(tmp_path / "one.json")
    assert isinstance(wrapped, Article) and wrapped.article_id == RTQA_RECORD["doc_id"]


def test_jsonl_gz_is_streamed_with_line_numbers(tmp_path: Path) -> None:
    lines = [json.dumps(RTQA_RECORD), "", json.dumps(SYNONYM_RECORD)]
    with gzip.open(tmp_path / "corpus.jsonl.gz", "wt", encoding="utf-8") as stream:
        stream.write("\n".join(lines) + "\n")

    first, second = read(tmp_path)

    assert isinstance(first, Article) and isinstance(second, Article)
    assert first.source.endswith("corpus.jsonl.gz#1") and second.source.endswith("corpus.jsonl.gz#3")
    assert second.title == "Budget passes"


# --- bad inputs: a clear reason each, and the rest still comes out ---------------------------------------


def test_each_bad_file_fails_alone_and_the_good_ones_are_read(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text(BODY, encoding="utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.md").write_text(" \n\t\n", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"PK\x03\x04\x00\x00binary zip data")
    (tmp_path / "cp1252.txt").write_bytes("Caf\xe9 owners \x93welcome\x94 the new rules.".encode("latin-1"))
    (tmp_path / "broken.html").write_text("<html><body><p>unclosed <div><<>>", encoding="utf-8")
    (tmp_path / "invalid.json").write_text('{"text": "unterminated', encoding="utf-8")
    notext = [{"title": "Only a title"}, RTQA_RECORD]
    (tmp_path / "notext.json").write_text(json.dumps(notext), encoding="utf-8")
    (tmp_path / "bad_yaml.md").write_text("---\ntitle: [unclosed\n---\nBody text.", encoding="utf-8")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "missing.txt")

    items = read(tmp_path)

    failures = failures_by_file(items)
    assert failures.keys() == {
        "empty.txt",
        "blank.md",
        "binary.txt",
        "broken.html",
        "invalid.json",
        "notext.json#1",
        "bad_yaml.md",
        "gone.txt",
    }
    assert "empty" in failures["empty.txt"] and "empty" in failures["blank.md"]
    assert "binary" in failures["binary.txt"]
    assert failures["broken.html"] == "no article text found in the HTML"
    assert failures["invalid.json"].startswith("not valid JSON (Unterminated string")
    assert failures["notext.json#1"] == "record has no text (looked for text, body, content, article)"
    assert "front matter is not valid YAML" in failures["bad_yaml.md"]
    assert "No such file or directory" in failures["gone.txt"] and "symbolic link" in failures["gone.txt"]

    articles = {Path(item.source).name: item for item in items if isinstance(item, Article)}
    assert articles.keys() == {"good.txt", "cp1252.txt", "notext.json#2"}
    assert articles["good.txt"].text == BODY
    assert articles["cp1252.txt"].text == "Café owners “welcome” the new rules."
    assert articles["cp1252.txt"].warnings == ("not valid UTF-8; decoded as cp1252",)


def test_utf16_and_utf32_text_with_a_byte_order_mark_is_read_and_binary_is_still_refused(
    tmp_path: Path,
) -> None:
    text = "---\ntitle: Ferry strike ends\n---\nThe ferry crews of Velmora returned to work on Monday."
    (tmp_path / "windows.txt").write_bytes(text.encode("utf-16"))  # Notepad's "Unicode": BOM + UTF-16-LE
    (tmp_path / "mac.md").write_bytes(codecs.BOM_UTF16_BE + text.encode("utf-16-be"))
    (tmp_path / "wide.md").write_bytes(text.encode("utf-32"))
    page = (
        "<html><head><title>Ferry strike ends</title></head><body><article><p>"
        + BODY
        + "</p></article></body></html>"
    )
    (tmp_path / "page.html").write_bytes(page.encode("utf-16"))
    lines = "\n".join(json.dumps({"title": f"Ferry {n}", "text": BODY}, ensure_ascii=False) for n in (1, 2))
    (tmp_path / "records.jsonl").write_bytes(lines.encode("utf-16"))
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00binary")

    items = read(tmp_path)

    assert failures_by_file(items) == {
        "image.txt": "the file looks binary (NUL bytes near the start); save articles as UTF-8 text"
    }
    articles = {Path(item.source).name: item for item in items if isinstance(item, Article)}
    assert articles.keys() == {
        "windows.txt",
        "mac.md",
        "wide.md",
        "page.html",
        "records.jsonl#1",
        "records.jsonl#2",
    }
    for name in ("windows.txt", "mac.md", "wide.md"):
        assert articles[name].title == "Ferry strike ends"
        assert articles[name].text == "The ferry crews of Velmora returned to work on Monday."
    assert articles["windows.txt"].warnings == ("UTF-16 text (byte-order mark); decoded as UTF-16",)
    assert articles["wide.md"].warnings == ("UTF-32 text (byte-order mark); decoded as UTF-32",)
    assert articles["page.html"].title == "Ferry strike ends"
    assert articles["page.html"].text.split() == BODY.split()
    assert articles["records.jsonl#2"].title == "Ferry 2" and articles["records.jsonl#2"].text == BODY
    assert "UTF-16" in articles["records.jsonl#1"].warnings[-1]


def test_files_and_records_over_the_size_limit_fail(tmp_path: Path) -> None:
    config = load_settings(max_file_mb=0.001)  # 1,000 bytes
    (tmp_path / "big.txt").write_text("Words. " * 300, encoding="utf-8")
    (tmp_path / "small.txt").write_text(BODY, encoding="utf-8")
    records = [{"text": "x " * 1000}, {"text": "A short record."}]
    (tmp_path / "feed.jsonl").write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")

    items = read(tmp_path, config)

    failures = failures_by_file(items)
    assert failures == {
        "big.txt": "the file is 0.0021 MB, over the 0.001 MB limit (NEWSDESK_MAX_FILE_MB)",
        "feed.jsonl#1": "the record is 0.002 MB, over the 0.001 MB limit (NEWSDESK_MAX_FILE_MB)",
    }
    assert {Path(item.source).name for item in items if isinstance(item, Article)} == {
        "feed.jsonl#2",
        "small.txt",
    }


def test_invalid_jsonl_line_fails_alone(tmp_path: Path) -> None:
    lines = [json.dumps(RTQA_RECORD), "{not json", "[1, 2]", json.dumps(SYNONYM_RECORD)]
    (tmp_path / "feed.jsonl").write_text("\n".join(lines), encoding="utf-8")

    items = read(tmp_path)

    assert failures_by_file(items) == {
        "feed.jsonl#2": "line 2 is not valid JSON (Expecting property name enclosed in double quotes, "
        "column 2)",
        "feed.jsonl#3": "the record is a JSON list, not an object",
    }
    assert [item.source.rsplit("#")[-1] for item in items if isinstance(item, Article)] == ["1", "4"]


def test_corrupt_gzip_fails_after_the_records_before_the_damage(tmp_path: Path) -> None:
    payload = "\n".join(json.dumps({**RTQA_RECORD, "doc_id": f"doc-{n}"}) for n in range(200)) + "\n"
    compressed = gzip.compress(payload.encode("utf-8"))
    (tmp_path / "corpus.jsonl.gz").write_bytes(compressed[: len(compressed) // 2])

    items = read(tmp_path)

    assert isinstance(items[-1], Failure) and "gzip data is corrupt" in items[-1].reason
    assert items[-1].source == str(tmp_path / "corpus.jsonl.gz")
    assert len(items) > 1 and all(isinstance(item, Article) for item in items[:-1])


def test_not_gzip_at_all_is_one_failure(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl.gz").write_text(json.dumps(RTQA_RECORD), encoding="utf-8")

    (failure,) = read(tmp_path)

    assert isinstance(failure, Failure) and "gzip data is corrupt" in failure.reason


# --- dates -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2022/01/07", datetime(2022, 1, 7)),
        ("2022-01-07", datetime(2022, 1, 7)),
        ("2022-01-07T10:00:00Z", datetime(2022, 1, 7, 10, tzinfo=UTC)),
        ("Fri, 07 Jan 2022 10:00:00 -0500", datetime(2022, 1, 7, 10, tzinfo=timezone(timedelta(hours=-5)))),
        ("January 7, 2022", datetime(2022, 1, 7)),
        ("June 2022", datetime(2022, 6, 1)),
        (datetime(2022, 1, 7, 9, 30), datetime(2022, 1, 7, 9, 30)),
        (datetime(2022, 1, 7).date(), datetime(2022, 1, 7)),
        ("yesterday", None),
        ("3 hours ago", None),
        ("March 5", None),
        ("not a date", None),
        ("", None),
        (None, None),
        (20220107, None),
    ],
)
def test_parse_published_never_falls_back_to_now(value: object, expected: datetime | None) -> None:
    assert parse_published(value) == expected


# --- discovering files -----------------------------------------------------------------------------------


def test_discover_files_walks_sorted_and_skips_hidden_and_unsupported(tmp_path: Path) -> None:
    root = tmp_path / "news"
    names = ["b.txt", "a.md", "sub/c.html", "sub/d.jsonl.gz", ".hidden.txt", ".git/e.txt", "f.pdf", "g.gz"]
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x", encoding="utf-8")

    files = discover_files([root])

    assert [source.relative_id for source in files] == [
        "news/a.md",
        "news/b.txt",
        "news/sub/c.html",
        "news/sub/d.jsonl.gz",
    ]
    assert all(source.root == root for source in files)


def test_discover_files_takes_a_single_file_and_rejects_a_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "story.txt"
    path.write_text(BODY, encoding="utf-8")

    assert discover_files([path]) == [SourceFile(root=path, path=path)]
    assert SourceFile(root=path, path=path).relative_id == "story.txt"
    with pytest.raises(FileNotFoundError, match="missing"):
        discover_files([tmp_path / "missing"])
