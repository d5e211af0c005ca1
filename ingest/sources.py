"""Find the article files to ingest in the folders and files a user names."""

from __future__ import annotations

import os
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
