"""The shipped reader: it loads offline, picks the sentence that answers, and says so clearly when its file is
missing or damaged."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from rag.answer import ExtractiveAnswerer
from rag.documents import Passage
from rag.events import Sources, TextDelta
from rag.reader import MODEL_DIR, Reader, ReaderError, default_reader

# Made-up reports: no model was trained on these towns, people or numbers.
HARBOR = (
    "Storm damage closed the marina in Port Wexley for most of the week. Residents gathered at the town hall "
    "on Monday to hear from officials. The harbor master, Delphine Okafor, ordered the marina closed after "
    "inspectors found two cracked pilings. Repairs are expected to take several weeks, officials said."
)
BRIDGE = (
    "The Corran Valley footbridge has been a local landmark for decades. Engineers inspected it again this "
    "spring. The county said the bridge would reopen on June 14 after its deck was replaced. Hikers had used "
    "a detour through the forest while the work went on."
)
FESTIVAL = (
    "The Lantern Festival in Millbrook drew crowds from across the region. Organisers praised the volunteers "
    "who set up the stalls. About 4,300 visitors attended the three-day festival, a record for the town. "
    "Next year's dates have not been announced."
)


def passage(n: int, text: str, title: str) -> Passage:
    return Passage(f"a{n}::0", f"a{n}", text, title, "Valley Herald", None, None, "2026-11-10", 0, len(text),
                   1.0 - n / 10)  # fmt: skip


def first_sentence(question: str) -> str:
    passages = [
        passage(1, HARBOR, "Marina closed after storm"),
        passage(2, BRIDGE, "Footbridge work"),
        passage(3, FESTIVAL, "Festival draws crowds"),
    ]
    events = list(ExtractiveAnswerer().answer(question, passages, as_of=date(2026, 11, 12)))
    assert isinstance(events[-1], Sources) and events[-1].citations, "the answer cites its sources"
    return next(e.text for e in events if isinstance(e, TextDelta))


def test_the_reader_loads_offline_and_prefers_the_answering_sentence() -> None:
    # (a fresh interpreter with no network allowed to any hub: the model comes from the package's own file)
    code = (
        "from rag.reader import Reader; r = Reader(); "
        "s = r.score('Who ordered the marina closed?', ['Residents gathered at the town hall on Monday.', "
        "'The harbor master, Delphine Okafor, ordered the marina closed.']); print(s[1] > s[0])"
    )
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin", "NO_PROXY": "*",
           "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    assert "torch" not in sys.modules and "transformers" not in sys.modules


@pytest.mark.parametrize(
    ("question", "answering"),
    [
        ("Who ordered the marina in Port Wexley closed?", "Delphine Okafor"),
        ("How many visitors attended the Lantern Festival?", "4,300"),
        ("When will the Corran Valley footbridge reopen?", "June 14"),
    ],
)
def test_the_answering_sentence_leads(question: str, answering: str) -> None:
    assert answering in first_sentence(question)


def test_a_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    shutil.copy(MODEL_DIR / "reader.json", tmp_path / "reader.json")
    with pytest.raises(ReaderError) as raised:
        Reader(tmp_path)
    message = str(raised.value)
    assert str(tmp_path / "reader.onnx") in message and "missing" in message
    assert "git checkout -- rag/models/reader.onnx" in message and "python -m train.reader" in message


def test_a_truncated_model_file_is_a_clear_error(tmp_path: Path) -> None:
    shutil.copy(MODEL_DIR / "reader.json", tmp_path / "reader.json")
    whole = (MODEL_DIR / "reader.onnx").read_bytes()
    (tmp_path / "reader.onnx").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ReaderError) as raised:
        Reader(tmp_path)
    assert str(tmp_path / "reader.onnx") in str(raised.value) and "damaged" in str(raised.value)


def test_the_answerer_is_built_with_the_shipped_reader() -> None:
    assert ExtractiveAnswerer().reader is default_reader()
