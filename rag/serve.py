"""Run Newsdesk: a Chroma server, ingest of the corpus folder, and the Streamlit app, stopped together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from rag.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def wait_until_up(url: str, process: subprocess.Popen[bytes], *, what: str, seconds: float = 60) -> None:
    """Wait for a server to answer at url; raise if it exits or takes too long."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start (see its output above)") from None
            time.sleep(0.3)


def serve(config: Settings, *, host: str, port: int, chroma_port: int) -> int:
    """Start Chroma on host:chroma_port, ingest the corpus, serve the app on host:port until stopped."""
    env = {**os.environ, "CHROMA_HOST": host, "CHROMA_PORT": str(chroma_port)}
    chroma = Path(sys.executable).parent / "chroma"
    started: list[subprocess.Popen[bytes]] = []

    def stop(*_: object) -> None:
        for process in reversed(started):
            if process.poll() is None:
                process.terminate()
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Ctrl+C stops everything, even where the shell started this command with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        started.append(
            subprocess.Popen(
                [str(chroma), "run", "--path", str(config.data_dir / "chroma-server"), "--host", host,
                 "--port", str(chroma_port)],
                stdout=subprocess.DEVNULL,
            )
        )  # fmt: skip
        wait_until_up(f"http://{host}:{chroma_port}/api/v2/heartbeat", started[0], what="the Chroma server")
        subprocess.run([sys.executable, "-m", "ingest", str(config.corpus_dir)], env=env, check=False)
        app = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.address", host,
             "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--client.toolbarMode", "minimal"],
            env=env,
        )  # fmt: skip
        started.append(app)
        wait_until_up(f"http://{host}:{port}/_stcore/health", app, what="the app")
        print(f"Newsdesk is at http://{host}:{port} (Ctrl+C stops it and the Chroma server)", flush=True)
        return app.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop()
