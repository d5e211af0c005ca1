"""The evaluation command: figures checked against values worked out by hand on a corpus made here."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from evaluate import (
    Outcome,
    Question,
    contains_answer,
    first_sentence,
    interval,
    main,
    read_questions,
    summarize,
)

ARTICLES = [
    (
        "https://news.example/2022/06/10/lanterns",
        "Lisbon lights up for the lantern festival",
        "2022/06/10",
        "Lisbon hosted the European lantern festival this week, drawing forty thousand visitors to the "
        "riverside. Organisers said the lanterns were made from recycled paper by local schools.",
    ),
    (
        "https://news.example/2022/06/09/whales",
        "Humpback whales return to the bay",
        "2022/06/09",
        "Marine biologists counted twelve humpback whales in Monterey Bay on Wednesday, the largest group "
        "seen there in a decade. The whales feed on anchovies that have returned with colder water.",
    ),
    (
        "https://news.example/2022/06/08/chess",
        "Teenager wins national chess title",
        "2022/06/08",
        "A fifteen-year-old from Oslo named Ingrid Berg won the national chess championship on Sunday, "
        "beating the defending champion in a tense final game that lasted six hours.",
    ),
    (
        "https://news.example/2022/07/01/volcano",
        "Volcano erupts in Iceland",
        "2022/07/01",
        "The Fagradalsfjall volcano in Iceland erupted again, sending lava down an empty valley. "
        "Scientists said the eruption posed no danger to the capital.",
    ),
]

QUESTIONS = [
    # gold ranked first
    ("q1", "Which city hosted the lantern festival this week?", ["Lisbon"], [ARTICLES[0][0]]),
    ("q2", "How many humpback whales were counted in Monterey Bay?", ["twelve"], [ARTICLES[1][0]]),
    # the only article on the subject is dated after the question: it must not be found
    ("q3", "Which volcano erupted in Iceland?", ["Fagradalsfjall"], [ARTICLES[3][0]]),
    # two gold articles, one of them not in the corpus: found first, recall one half
    (
        "q4",
        "Who won the national chess championship?",
        ["Ingrid Berg"],
        [ARTICLES[2][0], "https://news.example/missing"],
    ),
]


@pytest.fixture
def eval_files(tmp_path: Path) -> tuple[Path, Path]:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"doc_id": url, "url": url, "title": title, "publish_date": day, "text": text}) + "\n"
            for url, title, day, text in ARTICLES
        ),
        encoding="utf-8",
    )
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        "".join(
            json.dumps(
                {
                    "question_id": qid,
                    "question_date": "2022/06/12",
                    "question": text,
                    "answer_text": answers,
                    "gold_doc_ids": gold,
                }
            )
            + "\n"
            for qid, text, answers, gold in QUESTIONS
        ),
        encoding="utf-8",
    )
    return questions, corpus


def last_json(output: str) -> dict[str, object]:
    return json.loads(output.strip().splitlines()[-1])


def test_eval_figures_match_hand_computed_values(eval_files, tmp_path, capsys) -> None:
    questions, corpus = eval_files
    out = tmp_path / "ranks.jsonl"
    store = tmp_path / "eval-store"
    assert (
        main(
            ["--questions", str(questions), "--corpus", str(corpus), "--store", str(store), "--out", str(out)]
        )
        == 0
    )
    captured = capsys.readouterr()
    figures = last_json(captured.out)
    # ranks: q1 1, q2 1, q3 none (its article is after the question date), q4 1 with 1 of 2 gold articles
    assert figures["questions"] == 4
    assert figures["hit@1"] == figures["hit@5"] == figures["hit@10"] == 0.75
    assert figures["mrr@10"] == 0.75
    assert figures["recall@10"] == pytest.approx((1 + 1 + 0 + 0.5) / 4)
    assert figures["answer_contains"] == 0.75 and figures["answer_cites_gold"] == 0.75
    assert 0 < figures["first_sentence_contains"] <= figures["answer_contains"]
    assert "4 new" in captured.err
    rows = {row["question_id"]: row for row in map(json.loads, out.read_text().splitlines())}
    assert rows["q3"]["gold_rank"] is None and ARTICLES[3][0] not in rows["q3"]["ranked"]
    assert "Lisbon" in rows["q1"]["answer"] and rows["q1"]["cited"] == [ARTICLES[0][0]]
    first = first_sentence(rows["q1"]["answer"])
    assert "[" not in first and rows["q1"]["answer"].startswith(first)
    assert rows["q1"]["first_sentence_contains"] == ("Lisbon" in first)
    assert rows["q4"]["gold_found"] == 1

    # a second run reuses the store: nothing is embedded again
    assert (
        main(["--questions", str(questions), "--corpus", str(corpus), "--store", str(store), "--limit", "2"])
        == 0
    )
    again = capsys.readouterr()
    assert "0 new, 0 changed, 4 unchanged" in again.err
    assert last_json(again.out)["questions"] == 2


def test_set_changes_a_setting_for_one_run_and_against_reports_the_change(
    eval_files, tmp_path, capsys
) -> None:
    questions, corpus = eval_files
    args = ["--questions", str(questions), "--corpus", str(corpus), "--store", str(tmp_path / "s")]
    assert main([*args, "--out", str(tmp_path / "before.jsonl")]) == 0
    before = last_json(capsys.readouterr().out)

    # recency made absolute: the newest article (the lanterns, June 10) comes first for every question;
    # and a passage answers only when it holds every word of the question (the lantern article never
    # says "city")
    variant = ["--set", "recent_floor=0", "--set", "recent_half_life=0.01", "--set", "answer.min_coverage=1"]
    assert main([*args, *variant, "--against", str(tmp_path / "before.jsonl")]) == 0
    output = capsys.readouterr().out
    after = last_json(output)

    assert before["hit@1"] == 0.75 and after["hit@1"] == 0.25
    assert before["answer_contains"] == 0.75 and after["answer_contains"] < 0.75
    assert after["set"] == ["recent_floor=0", "recent_half_life=0.01", "answer.min_coverage=1"]
    change, low, high = after["change"]["hit@1"]  # type: ignore[index]
    assert change == -0.5 and low <= -0.25 and high <= 0
    assert "change from" in output and "| hit@1 | -0.5000 |" in output
    # the defaults again: the store is reused and the figures come back
    assert main(args) == 0
    assert last_json(capsys.readouterr().out)["hit@1"] == 0.75


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("no_such_setting=1", "the settings are: retrieval.candidates"),
        ("recent_floor=2", "less than or equal to 1"),
        ("candidates", "NAME=VALUE"),
    ],
)
def test_a_bad_setting_is_a_clear_error(eval_files, tmp_path, capsys, assignment, message) -> None:
    questions, corpus = eval_files
    args = ["--questions", str(questions), "--corpus", str(corpus), "--store", str(tmp_path / "s")]
    assert main([*args, "--set", assignment]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()  # refused before anything was ingested


def test_intervals_cover_the_figure_and_narrow_with_more_questions() -> None:
    few, many = [1.0, 0.0] * 5, [1.0, 0.0] * 200
    low, high = interval(few)
    assert low < 0.5 < high and high - low > 0.4
    narrow = interval(many)
    assert narrow[0] < 0.5 < narrow[1] and narrow[1] - narrow[0] < 0.15
    assert interval([1.0] * 10) == (1.0, 1.0)


@pytest.mark.parametrize("retriever", ["dense", "keyword"])
def test_baselines_rank_by_the_same_command(eval_files, tmp_path, capsys, retriever) -> None:
    questions, corpus = eval_files
    args = ["--questions", str(questions), "--corpus", str(corpus), "--store", str(tmp_path / "s")]
    assert main([*args, "--retriever", retriever]) == 0
    figures = last_json(capsys.readouterr().out)
    # the distinct subjects are found by either search alone; the article after the question date never is
    assert figures["retriever"] == retriever and figures["hit@1"] == 0.75
    assert "answer_contains" not in figures  # only Newsdesk's retrieval feeds the answerer


def test_summary_of_ranks_two_and_four() -> None:
    questions = [Question(f"q{n}", "?", date(2022, 1, 1), ("x",), ("g",)) for n in range(4)]
    ranks = [1, 2, 4, None]
    outcomes = [
        Outcome(
            q.question_id, "?", "2022-01-01", ["g"], [], rank, int(rank is not None), None, [], None, None
        )
        for q, rank in zip(questions, ranks, strict=True)
    ]
    figures = summarize(outcomes, k=10)
    assert figures["hit@1"] == 0.25 and figures["hit@5"] == 0.75 and figures["hit@10"] == 0.75
    assert figures["mrr@10"] == round((1 + 1 / 2 + 1 / 4) / 4, 4)
    assert figures["recall@10"] == 0.75


def test_answer_matching_ignores_case_quotes_and_articles() -> None:
    assert contains_answer("Netflix said “Squid Game” returns.", ["\u201cSquid Game\u201d"])
    assert contains_answer("It was the Europe plan.", ["europe"])
    assert not contains_answer("Europeans agreed.", ["Europe"])


def test_a_question_without_its_date_is_a_clear_error(tmp_path) -> None:
    bad = tmp_path / "q.jsonl"
    bad.write_text(json.dumps({"question": "Who?", "gold_doc_ids": []}) + "\n")
    with pytest.raises(ValueError, match="line 1"):
        read_questions(bad)


def test_answers_are_checked_and_refusals_counted(eval_files, tmp_path, capsys) -> None:
    questions, corpus = eval_files
    store = tmp_path / "eval-store"
    assert main(["--questions", str(questions), "--corpus", str(corpus), "--store", str(store)]) == 0
    figures = last_json(capsys.readouterr().out)
    # The offline answerer quotes its sources: every cited sentence is supported. It declines q3 only.
    assert figures["citation_precision"] == 1.0 and figures["unsupported_rate"] == 0.0
    assert figures["refusal"] == 0.25

    # Asked the day before their answers were published, every question should be declined.
    args = ["--questions", str(questions), "--corpus", str(corpus), "--store", str(store), "--unanswerable"]
    assert main(args) == 0
    before = last_json(capsys.readouterr().out)
    assert before["questions"] == 4 and before["refusal"] == 1.0 and before["answer_contains"] == 0.0


def test_an_answer_about_this_week_from_older_sources_counts_as_warned(eval_files, tmp_path, capsys) -> None:
    _, corpus = eval_files
    questions = tmp_path / "late.jsonl"
    # Asked 20 days after the articles: the "this week" question is answered with the warning that its
    # newest source is old; the whale count, asked without a period, is answered plainly.
    questions.write_text(
        "".join(
            json.dumps({"question_id": qid, "question_date": "2022/06/30", "question": text,
                        "answer_text": answers, "gold_doc_ids": gold}) + "\n"
            for qid, text, answers, gold in QUESTIONS[:2]
        ),
        encoding="utf-8",
    )  # fmt: skip
    args = ["--questions", str(questions), "--corpus", str(corpus), "--store", str(tmp_path / "s")]
    assert main([*args, "--out", str(tmp_path / "late-out.jsonl")]) == 0
    figures = last_json(capsys.readouterr().out)
    assert figures["answer_contains"] == 1.0 and figures["refusal"] == 0.0
    assert figures["declined_or_warned"] == 0.5
    lines = (tmp_path / "late-out.jsonl").read_text("utf-8").splitlines()
    warned = {o["question_id"]: o["warned"] for o in map(json.loads, lines)}
    assert warned == {"q1": True, "q2": False}


def test_chat_answerer_is_measured_over_the_openai_protocol(
    eval_files, tmp_path, capsys, monkeypatch
) -> None:
    from openai_server import openai_server

    questions, corpus = eval_files
    with openai_server() as server:
        # Every answer cites [1] for a count no source gives, and the one revision keeps it.
        server.reply = server.rewrite = "Lisbon hosted it, with 90,000 visitors [1]."
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        store = tmp_path / "eval-store"
        args = ["--questions", str(questions), "--corpus", str(corpus), "--store", str(store)]
        assert main([*args, "--answerer", "chat", "--limit", "2"]) == 0
        asked = [b for p, b in server.requests if p.endswith("/chat/completions")]
    output = capsys.readouterr().out
    figures = last_json(output)
    assert "answerer: chat model" in output
    assert figures["citation_precision"] == 0.0 and figures["unsupported_rate"] == 1.0
    assert figures["refusal"] == 0.0
    assert len(asked) == 4  # two answers, each revised once


def test_chat_answerer_without_a_server_is_a_clear_error(eval_files, tmp_path, capsys) -> None:
    questions, corpus = eval_files
    args = ["--questions", str(questions), "--corpus", str(corpus), "--store", str(tmp_path / "s")]
    assert main([*args, "--answerer", "chat"]) == 2
    assert "OPENAI_BASE_URL" in capsys.readouterr().err
