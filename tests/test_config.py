"""Settings: tuned retrieval and answer numbers come from one frozen config, changed by name."""

from __future__ import annotations

import pytest

from rag.config import SettingError, load_settings, with_overrides


def test_a_retrieval_setting_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("NEWSDESK_RETRIEVAL__RECENT_FLOOR", "0.5")
    monkeypatch.setenv("NEWSDESK_ANSWER__MAX_SENTENCES", "2")
    config = load_settings()
    assert config.retrieval.recent_floor == 0.5 and config.answer.max_sentences == 2
    assert config.retrieval.candidates == load_settings().retrieval.candidates  # the rest stay


def test_overrides_make_new_settings_and_leave_the_old_ones() -> None:
    config = load_settings()
    changed = with_overrides(
        config, ["recent_floor=0.5", "retrieval.candidates=40", "answer.keep_within=0.9"]
    )
    assert (changed.retrieval.recent_floor, changed.retrieval.candidates) == (0.5, 40)
    assert changed.answer.keep_within == 0.9
    assert config.retrieval.recent_floor != 0.5  # frozen: the original is untouched
    with pytest.raises(ValueError):
        changed.retrieval.recent_floor = 0.1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("recent_flor=0.5", "no setting 'recent_flor'"),
        ("answer.candidates=3", "no setting 'answer.candidates'"),
        ("candidates=many", "valid integer"),
        ("opinion_weight=-1", "greater than or equal to 0"),
        ("=1", "no setting ''"),
    ],
)
def test_a_bad_override_says_what_is_wrong(assignment, message) -> None:
    with pytest.raises(SettingError, match=message):
        with_overrides(load_settings(), [assignment])
