"""Find what to ingest: the article files in the folders and files a user names, and the sources file."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# `.jsonl.gz` is matched on the whole name, so it is listed as one suffix.
SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl", ".jsonl.gz")


@dataclass(frozen=True)
class SourceFile:
    """One file to read articles from, and the folder (or the file itself) the user named."""

    root: Path
    path: Path

    @property
    def relative_id(self) -> str:
        """Return the id of an article without a URL: root folder name + path inside it, or the file name."""
        if self.path == self.root:
            return self.path.name
        # abspath, not resolve: `.` gets its real name, but a symlinked root keeps the name the user gave.
        root_name = Path(os.path.abspath(self.root)).name
        return f"{root_name}/{self.path.relative_to(self.root).as_posix()}"


def suffix_of(path: Path) -> str | None:
    """Return the supported suffix the file name ends with (lower case), or None."""
    name = path.name.lower()
    return next((suffix for suffix in SUPPORTED_SUFFIXES if name.endswith(suffix)), None)


def discover_files(paths: Sequence[Path]) -> list[SourceFile]:
    """List the article files under each folder, and each file named directly, in a stable order."""
    files: list[SourceFile] = []
    for path in paths:
        if path.is_dir():
            files.extend(SourceFile(root=path, path=found) for found in _walk(path, seen=set()))
        elif path.exists() or path.is_symlink():
            # A file named directly is always read, so an unsupported type is reported, not skipped.
            files.append(SourceFile(root=path, path=path))
        else:
            raise FileNotFoundError(f"{path} does not exist: name a folder of articles or an article file")
    return files


def _walk(folder: Path, *, seen: set[Path]) -> list[Path]:
    """List supported, non-hidden files under a folder, sorted, following folder symlinks once."""
    real = folder.resolve()
    if real in seen:
        return []
    seen.add(real)
    found: list[Path] = []
    for entry in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            found.extend(_walk(entry, seen=seen))
        elif suffix_of(entry) and (entry.is_file() or entry.is_symlink()):
            # A dangling symlink is kept so that reading it reports the broken link.
            found.append(entry)
    return found


# --- the sources file: folders, feeds and pages polled together --------------------------------------------

SOURCE_KINDS = ("folders", "feeds", "pages")


class SourcesFileError(ValueError):
    """A sources file that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class SourceSet:
    """Everything one ingest run reads: folders or files, feed URLs and article page URLs."""

    paths: tuple[Path, ...] = ()
    feeds: tuple[str, ...] = ()
    pages: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.paths or self.feeds or self.pages)

    def describe(self) -> str:
        counts = zip(SOURCE_KINDS, (self.paths, self.feeds, self.pages), strict=True)
        return ", ".join(f"{len(found)} {kind}" for kind, found in counts if found)


def read_sources_file(path: Path) -> SourceSet:
    """Read a sources file (TOML): `folders`, `feeds` and `pages`, each a list of strings.

    Folders are relative to the file's own folder.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise SourcesFileError(f"{path}: cannot read it as TOML ({error})") from None
    unknown = sorted(set(data) - set(SOURCE_KINDS))
    if unknown:
        raise SourcesFileError(f"{path}: unknown keys {', '.join(unknown)}; use {', '.join(SOURCE_KINDS)}")
    lists: dict[str, list[str]] = {}
    for kind in SOURCE_KINDS:
        value = data.get(kind, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SourcesFileError(f"{path}: `{kind}` must be a list of strings")
        lists[kind] = value
    return SourceSet(
        paths=tuple(path.parent / folder for folder in lists["folders"]),
        feeds=tuple(lists["feeds"]),
        pages=tuple(lists["pages"]),
    )


def add_to_sources_file(path: Path, *, feed: str) -> bool:
    """Add a feed to the sources file (made if missing) so later polls read it; False if already there."""
    current = read_sources_file(path) if path.exists() else SourceSet()
    if feed in current.feeds:
        return False
    folders = [os.path.relpath(p, path.parent) for p in current.paths]
    lists = {"folders": folders, "feeds": [*current.feeds, feed], "pages": list(current.pages)}
    lines = ["# Sources `python -m ingest` reads when given none (and `--follow` keeps polling)."]
    # A JSON string is a valid TOML basic string.
    lines += [f"{kind} = [{', '.join(json.dumps(v) for v in lists[kind])}]" for kind in SOURCE_KINDS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return True
