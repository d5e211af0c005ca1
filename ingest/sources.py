"""Find what to ingest: the article files in the folders and files a user names, and the sources file."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.web import check_url
from rag.config import Settings

# `.jsonl.gz` is matched on the whole name, so it is listed as one suffix.
SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl", ".jsonl.gz")


@dataclass(frozen=True)
class SourceFile:
    """One file to read articles from, and the folder (or the file itself) the user named."""

    root: Path
    path: Path
    refused: str | None = None  # why it must not be read (a symbolic link that leads out of the folder)

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


_SPECIAL = "not a regular file (a pipe, socket or device); not read"


def discover_files(paths: Sequence[Path]) -> list[SourceFile]:
    """List the article files under each folder, and each file named directly, in a stable order.

    Nothing outside the folders named is read: a symbolic link whose target lies outside all of them is
    listed as refused (a link to a folder outside is not walked), and a file reached through several
    paths inside them (a link and its target) is listed once, by its own path where it has one.
    """
    inside = [path.resolve() for path in paths if path.is_dir()]
    files: list[SourceFile] = []
    for path in paths:
        if path.is_dir():
            files.extend(_walk(path, root=path, inside=inside, seen=set()))
        elif path.exists() and not path.is_file():  # a pipe, socket or device named directly
            files.append(SourceFile(root=path, path=path, refused=_SPECIAL))
        elif path.exists() or path.is_symlink():
            # A file named directly is always read, so an unsupported type is reported, not skipped.
            files.append(SourceFile(root=path, path=path))
        else:
            raise FileNotFoundError(f"{path} does not exist: name a folder of articles or an article file")
    return _once_each(files)


def _walk(folder: Path, *, root: Path, inside: list[Path], seen: set[Path]) -> list[SourceFile]:
    """List supported, non-hidden files under a folder, sorted, following folder symlinks that stay inside
    the folders named, once each."""
    real = folder.resolve()
    if real in seen:
        return []
    seen.add(real)
    found: list[SourceFile] = []
    for entry in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if entry.name.startswith("."):
            continue
        if entry.is_symlink() and (escape := _escapes(entry, inside)):
            if entry.is_dir() or suffix_of(entry):
                found.append(SourceFile(root=root, path=entry, refused=escape))
        elif entry.is_dir():
            found.extend(_walk(entry, root=root, inside=inside, seen=seen))
        elif suffix_of(entry) and (entry.is_file() or entry.is_symlink()):
            # A dangling symlink is kept so that reading it reports the broken link.
            found.append(SourceFile(root=root, path=entry))
        elif suffix_of(entry):  # a named pipe, socket or device: opening it could wait forever
            found.append(SourceFile(root=root, path=entry, refused=_SPECIAL))
    return found


def _escapes(link: Path, inside: list[Path]) -> str | None:
    """Why a symbolic link must not be followed (its target is outside the folders named, or it loops)."""
    try:
        target = link.resolve()
    except (RuntimeError, OSError):  # a loop of links
        return "symbolic link loop; it leads nowhere"
    if any(target == folder or folder in target.parents for folder in inside):
        return None
    return f"symbolic link leads outside the folder (to {target}); not read"


def _once_each(files: list[SourceFile]) -> list[SourceFile]:
    """Keep one listing of each file reached through several paths: its own path before a link's."""
    chosen: dict[Path, SourceFile] = {}
    dropped: set[int] = set()
    for source in files:
        if source.refused or not source.path.exists():
            continue  # refused, or a dangling link: kept, so that reading it says why
        real = source.path.resolve()
        held = chosen.setdefault(real, source)
        if held is source:
            continue
        if held.path.is_symlink() and not source.path.is_symlink():  # the file's own path wins
            chosen[real], source = source, held
        dropped.add(id(source))
    return [source for source in files if id(source) not in dropped]


def save_upload(corpus_dir: Path, name: str, data: bytes) -> Path:
    """Save an uploaded article as `uploads/<name>` in the corpus folder and return its path. A link already
    at that name is replaced, never written through; an `uploads` folder that leads outside the corpus
    folder is refused (ValueError)."""
    folder = corpus_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    corpus = corpus_dir.resolve()
    if folder.is_symlink() or corpus not in folder.resolve().parents:
        raise ValueError(f"{folder} leads outside the corpus folder {corpus}; uploads are not saved there")
    path = folder / Path(name).name.lstrip(".")
    if path.is_symlink():
        path.unlink()
    path.write_bytes(data)
    return path


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


def add_to_sources_file(path: Path, *, feed: str, config: Settings) -> bool:
    """Add a feed to the sources file (made if missing) so later polls read it; False if already there.

    An address Newsdesk would refuse to fetch is refused here, before the file is touched (FetchError says
    why), so a poll never reads a saved address that is not to be fetched.
    """
    check_url(feed, config)
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
