"""``nsmx demo``: the main job on the embedded default (scikit-learn's bundled 8x8 digits), offline.

Trains a small NSM, then reports its Monte-Carlo test accuracy against the number of samples.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch


def run_demo(args: argparse.Namespace) -> int:
    from nsm.data import load_dataset
    from nsm.evaluate import mc_predict
    from nsm.train import CHECKPOINT_NAME, TrainConfig, train

    out = Path(args.out)
    train_dir = out / "train"
    if (train_dir / CHECKPOINT_NAME).exists():
        shutil.rmtree(train_dir)  # the demo always starts from scratch
    x_tr, y_tr = load_dataset("digits", split="train")
    x_te, y_te = load_dataset("digits", split="test")
    cfg = TrainConfig(model="digits-mlp", rule="nsm", epochs=args.epochs, seed=args.seed)
    print(
        f"[1/2] training an NSM ({cfg.model}: {len(x_tr)} train / {len(x_te)} test digits, "
        f"{cfg.epochs} epochs)"
    )
    t0 = time.perf_counter()
    train(cfg, (x_tr, y_tr, x_te, y_te), train_dir, progress=not args.no_progress)
    train_s = time.perf_counter() - t0

    print(f"[2/2] Monte-Carlo evaluation ({args.samples} samples of fresh synaptic noise)")
    from nsm.checkpoint import load_model

    model, _ = load_model(train_dir / CHECKPOINT_NAME)
    rows = []
    for s in sorted({1, 10, args.samples}):
        prob = mc_predict(
            model, x_te, samples=s, generator=torch.Generator().manual_seed(args.seed)
        )
        acc = float((prob.argmax(1) == y_te).float().mean())
        rows.append({"samples": s, "software_accuracy": acc})
    print()
    print("  MC samples   software NSM accuracy")
    for r in rows:
        print(f"  {r['samples']:>10d}   {r['software_accuracy'] * 100:8.2f} %")
    print(f"\ntrained in {train_s:.1f} s; checkpoint: {train_dir / CHECKPOINT_NAME}")
    (out / "demo.json").write_text(json.dumps({"train_s": train_s, "rows": rows}, indent=1) + "\n")
    return 0
