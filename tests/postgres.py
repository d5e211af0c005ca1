"""A real PostgreSQL for the tests: a cluster made with `initdb` in a temporary folder, served on a free
loopback port by an unprivileged user, and stopped (folder and all) when the tests end.

Debian's `postgresql` package puts its programs in /usr/lib/postgresql/N/bin; when they are missing the
tests that need a server are skipped, saying so. PostgreSQL refuses to run as root, so a root test run
serves it as the `postgres` user the package creates (or `nobody`).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

WAIT_S = 30


def server_programs() -> Path | None:
    """The folder of the newest installed PostgreSQL's server programs, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _runner() -> list[str]:
    """How to run the server's programs: as ourselves, or, for root, as an unprivileged user."""
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["runuser", "-u", user, "--"]
    raise RuntimeError("PostgreSQL will not run as root, and no unprivileged user was found")


@contextmanager
def postgres_server(port: int) -> Iterator[str]:
    """Serve a new PostgreSQL cluster on 127.0.0.1:`port`; yield the URL of its `postgres` database."""
    programs = server_programs()
    if programs is None:
        raise FileNotFoundError("no PostgreSQL server programs (initdb) found")
    runner = _runner()
    folder = Path(tempfile.mkdtemp(prefix="newsdesk-postgres-"))
    if runner:
        shutil.chown(folder, user=runner[2])
    data = folder / "data"
    try:
        subprocess.run(
            [*runner, str(programs / "initdb"), "-D", str(data), "-U", "newsdesk", "--auth=trust",
             "-E", "UTF8", "--locale=C", "--no-sync"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        server = subprocess.Popen(
            [*runner, str(programs / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
             "-k", str(folder), "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=100"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            _wait_until_ready(programs, port, server)
            yield f"postgresql://newsdesk@127.0.0.1:{port}/postgres"
        finally:
            server.terminate()
            server.wait(timeout=WAIT_S)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wait_until_ready(programs: Path, port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            error = server.stderr.read().decode() if server.stderr else ""
            raise RuntimeError(f"PostgreSQL stopped at start: {error[-2000:]}")
        ready = subprocess.run(
            [str(programs / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "newsdesk"],
            capture_output=True,
        )
        if ready.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"PostgreSQL did not answer on port {port} within {WAIT_S} s")
