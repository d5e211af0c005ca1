"""bench/scale.py on a small corpus made here: it embeds once, grows one store through its tiers (real
articles, then the archive made from them), measures each tier in a process of its own, resumes where it
stopped, and draws its figures."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow

SUBJECTS = [
    ("ferry", "The harbor ferry will run every ten minutes from Monday after the city hired new crews."),
    ("library", "The central library reopened after a renovation that added a children's wing."),
    ("bridge", "Engineers closed the old rail bridge after finding cracks in two of its steel beams."),
    ("orchestra", "The youth orchestra won the national competition with a programme of Brahms."),
    ("stadium", "The stadium roof repairs will cost nine million dollars, the council said."),
    ("airport", "The airport added direct flights to Lisbon and Reykjavik from the spring."),
]


def write_corpus(folder: Path) -> tuple[Path, Path, Path]:
    """Twelve articles the questions are asked of (the first corpus), eight more, and three questions."""
    records = []
    for n in range(20):
        subject, text = SUBJECTS[n % len(SUBJECTS)]
        filler = " ".join(f"Paragraph {p} on the {subject} tells residents what changes." for p in range(40))
        records.append({
            "doc_id": f"https://news.example/{n}", "title": f"{subject.title()} report {n}",
            "publish_date": f"2024-03-{n + 1:02d}", "authors": [], "url": f"https://news.example/{n}",
            "text": f"{text} Officials confirmed the {subject} plan on day {n}.\n\n{filler}",
        })  # fmt: skip
    first, rest, questions = folder / "first.jsonl", folder / "rest.jsonl", folder / "questions.jsonl"
    first.write_text("".join(json.dumps(r) + "\n" for r in records[:12]))
    rest.write_text("".join(json.dumps(r) + "\n" for r in records[12:]))
    asked = [
        ("How much will the stadium roof repairs cost?", "nine million dollars", 4),
        ("Where will the airport fly to from the spring?", "Lisbon", 5),
        ("Why did engineers close the rail bridge this week?", "cracks", 8),
    ]
    questions.write_text("".join(
        json.dumps({"question": q, "question_date": f"2024-03-{day + 3:02d}", "answer_text": [a],
                    "gold_doc_ids": [f"https://news.example/{day}"]}) + "\n"
        for q, a, day in asked
    ))  # fmt: skip
    return first, rest, questions


def run_bench(folder: Path, *options: str) -> subprocess.CompletedProcess[str]:
    first, rest, questions = write_corpus(folder)
    args = ["--first", str(first), "--corpus", str(rest), "--questions", str(questions), "--harvest"]
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale.py"), *args, "--data", str(folder / "scale"), *options],
        capture_output=True,
        text=True,
        timeout=900,
    )


def embedded(log: str) -> list[int]:
    """How many articles the bench embedded before each tier it wrote."""
    return [int(n) for n in re.findall(r"^tier \d+: (\d+) articles embedded$", log, flags=re.MULTILINE)]


def test_the_scale_bench_grows_a_store_through_its_tiers_and_resumes(tmp_path: Path) -> None:
    tiers = "10,20,50,120"
    first = run_bench(tmp_path, "--tiers", tiers, "--max", "20")
    assert first.returncode == 0, first.stderr[-3000:]
    assert embedded(first.stderr) == [10, 10], "each tier's real articles are embedded before it is written"
    figures = json.loads((tmp_path / "scale" / "figures.json").read_text())
    assert sorted(figures, key=int) == ["10", "20"]

    again = run_bench(tmp_path, "--tiers", tiers, "--plot", str(tmp_path / "scale.png"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert embedded(again.stderr) == [0, 0], "the cache is embedded once"
    figures = json.loads((tmp_path / "scale" / "figures.json").read_text())
    assert [figures[t]["articles"] for t in ("10", "20", "50", "120")] == [10, 20, 50, 120]
    for tier in figures.values():
        assert tier["measured"] and tier["articles_per_s"] > 0 and tier["rss_mb"] > 0
        assert tier["undated_p95_ms"] > 0 and tier["period_p95_ms"] > 0 and tier["vector_period_p95_ms"] > 0
        assert tier["undated_again_p95_ms"] > 0 and tier["period_again_p95_ms"] > 0
        assert 0 <= tier["hit@5"] <= 1 and tier["hit@5_ci"][0] <= tier["hit@5"] <= tier["hit@5_ci"][1]
    # The stadium question's article is found whatever the archive adds, all of it older than the news.
    assert figures["120"]["hit@5"] >= 2 / 3
    assert "| 120 |" in again.stdout  # the table
    assert (tmp_path / "scale.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
