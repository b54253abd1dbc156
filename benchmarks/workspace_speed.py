"""Benchmark: the batched workspace against the per-sample reference and qpth, and the full
forward of the tiny and the paper model, on this machine's CPU.

    python benchmarks/workspace_speed.py [--batch 64] [--paper-batch 4] [--out benchmarks/results]

Everything is measured in one run, side by side; the ratios are what the README quotes:
- reference / batched workspace at B = 64 (the per-sample loop with parameter copies,
  autograd and cvxpy, i.e. the way the authors' code works, see docs/method.md section 9);
- batched workspace (B = 64) / paper model forward (B = 64, from the per-sample time).
Writes ``workspace_speed.json`` and ``workspace_speed.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import fields
from pathlib import Path

import torch

from cocoer.models import CocoER, create_model
from cocoer.models.heads import FFN0Cache, LevelMappings
from cocoer.utils.timing import best_of
from cocoer.workspace import QP_METHODS, Workspace
from cocoer.workspace.level_losses import LevelLoss
from cocoer.workspace.reference import reference_workspace

ROOT = Path(__file__).resolve().parents[1]


def workspace_case(B: int, din: int, d: int, k: int, seed: int = 0):
    torch.manual_seed(seed)
    maps = LevelMappings(3, din, d, k)
    x = torch.randn(B, 3, din) / din**0.5 * 4
    y_t = (torch.rand(B, k) > 0.7).float()
    return maps, x, y_t


def time_workspace(maps, x, y_t, method: str, grad: bool, repeat: int = 5) -> float:
    ws = Workspace(LevelLoss("bce"), qp_method=method)
    z, logits, cache = maps(x)
    z, logits = z.detach().requires_grad_(grad), logits.detach().requires_grad_(grad)
    cache = FFN0Cache(**{f.name: getattr(cache, f.name).detach() for f in fields(cache)})

    def run() -> None:
        with torch.set_grad_enabled(grad):
            out = ws(maps, z, logits, cache, y_t)
            if grad:
                (out.z_hat.sum() + out.delta_sq.sum()).backward()

    return best_of(run, repeat=repeat)


def paper_model(image_size: int = 224) -> CocoER:
    """The paper's model (``cocoer_paper`` preset, EMOTIC's 26 classes), random weights."""
    return create_model("cocoer_paper", hfe={"image_size": image_size}, pretrained=False).eval()


def tiny_model(image_size: int = 64) -> CocoER:
    """The ``cocoer_tiny`` preset (26 classes), random weights."""
    return create_model("cocoer_tiny", hfe={"image_size": image_size}).eval()


def batch_of(B: int, S: int) -> dict[str, torch.Tensor]:
    box = torch.tensor([[0.2, 0.1, 0.7, 0.95]]).expand(B, 4).contiguous()
    head = torch.tensor([[0.35, 0.1, 0.55, 0.3]]).expand(B, 4).contiguous()
    return {
        "context": torch.randn(B, 3, S, S),
        "body": torch.randn(B, 3, S, S),
        "head": torch.randn(B, 3, S, S),
        "body_box": box,
        "head_box": head,
    }


def time_forward(model: CocoER, B: int, S: int, repeat: int) -> float:
    batch = batch_of(B, S)
    with torch.inference_mode():
        return best_of(lambda: model(batch), repeat=repeat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--paper-batch", type=int, default=4)
    ap.add_argument("--reference-samples", type=int, default=64)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    B = args.batch
    # the paper's sizes: N * d_h = 16 * 1024 inputs to FFN0, d = 256, k = 26
    din, d, k = 16 * 1024, 256, 26
    maps, x, y_t = workspace_case(B, din, d, k)
    res: dict[str, object] = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "workspace_sizes": {"B": B, "N*d_h": din, "d": d, "k": k},
    }
    t: dict[str, float] = {}
    for method in QP_METHODS:
        t[f"workspace_{method}_forward"] = time_workspace(maps, x, y_t, method, grad=False)
        t[f"workspace_{method}_forward_backward"] = time_workspace(maps, x, y_t, method, grad=True)
        print(
            f"batched workspace ({method}), B={B}: {t[f'workspace_{method}_forward'] * 1e3:.2f} ms "
            f"forward, {t[f'workspace_{method}_forward_backward'] * 1e3:.2f} ms forward+backward"
        )

    n_ref = min(args.reference_samples, B)
    start = time.perf_counter()
    reference_workspace(maps, x[:n_ref], y_t[:n_ref], LevelLoss("bce"))
    t["reference_per_sample"] = (time.perf_counter() - start) / n_ref
    t["reference_B"] = t["reference_per_sample"] * B
    print(
        f"per-sample reference: {t['reference_per_sample'] * 1e3:.1f} ms per sample "
        f"-> {t['reference_B']:.2f} s for B={B}"
    )

    tiny = tiny_model(64)
    t["tiny_forward_per_sample"] = time_forward(tiny, B, 64, repeat=3) / B
    print(
        f"tiny model forward: {t['tiny_forward_per_sample'] * 1e3:.2f} ms per sample (B={B}, 64 px)"
    )
    paper = paper_model(224)
    pb = args.paper_batch
    t["paper_forward_per_sample"] = time_forward(paper, pb, 224, repeat=2) / pb
    t["paper_forward_B"] = t["paper_forward_per_sample"] * B
    print(f"paper model forward: {t['paper_forward_per_sample']:.3f} s per sample (B={pb}, 224 px)")
    params = paper.parameter_counts()

    ratios = {
        "reference_over_batched": t["reference_B"] / t["workspace_closed_form_forward"],
        "reference_over_batched_fwd_bwd": t["reference_B"]
        / t["workspace_closed_form_forward_backward"],
        "qpth_over_closed_form": t["workspace_qpth_forward"] / t["workspace_closed_form_forward"],
        "workspace_share_of_paper_forward_pct": 100.0
        * t["workspace_closed_form_forward"]
        / t["paper_forward_B"],
    }
    res.update({"seconds": t, "ratios": ratios, "paper_model_parameters": params})
    print(
        f"ratios: reference / batched = {ratios['reference_over_batched']:.0f}x; "
        f"qpth / closed form = {ratios['qpth_over_closed_form']:.1f}x; batched workspace = "
        f"{ratios['workspace_share_of_paper_forward_pct']:.3f} % of the paper model's forward "
        f"at B={B}"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "workspace_speed.json").write_text(json.dumps(res, indent=2))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = [
            "batched\nclosed form",
            "batched\nqpth",
            "batched\nPGD",
            "per-sample\nreference",
            "paper model\nforward",
        ]
        vals = [
            t["workspace_closed_form_forward"],
            t["workspace_qpth_forward"],
            t["workspace_pgd_forward"],
            t["reference_B"],
            t["paper_forward_B"],
        ]
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.bar(names, vals, color=["C0", "C0", "C0", "C3", "C7"])
        ax.set_yscale("log")
        ax.set_ylabel(f"seconds for B = {B} (log)")
        ax.set_title("CocoER workspace on CPU (paper sizes)")
        for i, v in enumerate(vals):
            ax.text(i, v, f"{v:.3g}s", ha="center", va="bottom", fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "workspace_speed.png", dpi=120)
    except ImportError:  # pragma: no cover
        pass
    print(f"results written to {out / 'workspace_speed.json'}")


if __name__ == "__main__":
    main()
