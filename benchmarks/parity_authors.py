"""Parity and speed: the authors' ``model_GWT`` against its cocoer conversion, on this CPU.

    python benchmarks/parity_authors.py --authors-repo /tmp/CocoER \\
        --out benchmarks/results/parity_authors.json

1. Builds the authors' ``model_GWT`` (a fresh checkout of github bisno/CocoER, unedited;
   patched at run time only, see ``authors_gwt.py``) with random weights, and saves it the
   way the authors' files are laid out: ``checkpoints/GWT.pth``,
   ``checkpoints/VI_weights/w.pth`` and a CLIP RN50 state dict (``RN50.pt``, OpenAI's keys).
2. Converts it with ``cocoer-convert`` (the CLI's own function) for each preset.
3. Runs both on the same inputs (several persons, boxes touching the image border) and
   compares ``out_all``, ``label_VI``, ``label_head/body/ctx`` and the exclusion sequences:
   - ``authors_eval``: their model in ``.eval()`` with ``inside_lr = 0`` (their train.py
     evaluation: the inner step has no effect), batched;
   - ``authors_demo``: their inference.py: train mode (BatchNorm statistics of the single
     image, one person per forward), ``inside_lr = 1``, dropout off (colour jitter and BGR
     are preprocessing: both models get the same tensors here).
   The inputs keep away from the discontinuities (sigma(l_t) = 0.3, ties in f, position
   index 6.0): the margins are measured and written. A dedicated case with exact ties in f
   (zero prediction layers with equal biases for body and context) is compared on the
   exclusion sequences.
4. Times both, side by side, per sample at B = 1 and B = 4 (``authors_eval`` mode).

Needs ``cvxopt`` (the authors' QP solver): ``pip install cvxopt``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import authors_gwt as A  # noqa: E402

from cocoer.checkpoint.model import load_model  # noqa: E402
from cocoer.cli.convert import parse_args as convert_args  # noqa: E402
from cocoer.cli.convert import run as convert_run  # noqa: E402
from cocoer.utils.timing import best_of  # noqa: E402

PRESETS = {"authors_eval": ("eval", 0.0), "authors_demo": ("demo", 1.0)}
LEVEL_NAMES = ("context-level", "body-level", "head-level")  # cocoer's level order c, b, h
TAU_LOGIT = math.log(0.3 / 0.7)  # sigma(l) = 0.3


def make_inputs(n: int, seed: int) -> dict[str, Tensor]:
    """n persons: windows [n,3,224,224] (ImageNet-normalised scale) and int boxes in the
    224 frame, some touching the border; none puts a sample point at index 6.0."""
    g = torch.Generator().manual_seed(seed)
    smooth = lambda: torch.nn.functional.interpolate(
        torch.randn(n, 3, 28, 28, generator=g), size=224, mode="bilinear"
    )
    body = torch.tensor(
        [
            [0, 10, 130, 224],
            [60, 0, 224, 200],
            [0, 0, 224, 224],
            [30, 40, 151, 187],
            [100, 20, 213, 224],
            [5, 60, 90, 219],
        ]
    )[:n]
    head = torch.tensor(
        [
            [30, 20, 70, 66],
            [120, 3, 170, 52],
            [90, 0, 141, 57],
            [70, 45, 104, 83],
            [150, 25, 190, 70],
            [20, 63, 55, 101],
        ]
    )[:n]
    return {"context": smooth(), "body": smooth(), "head": smooth(),
            "body_box": body, "head_box": head}  # fmt: skip


def position_margin(boxes: Tensor) -> float:
    """Smallest |g - 6| over the authors' sample points g = (c + ((i+1/2)/7 - 1/2) s)/32."""
    u = (torch.arange(7, dtype=torch.float64) + 0.5) / 7 - 0.5  # [7]
    b = boxes.double()
    centre, size = (b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]  # [n, 2] (x, y)
    g = (centre[:, :, None] + u * size[:, :, None]) / 32  # [n, 2, 7]
    return float(g.sub(6).abs().min())


def spread_vi_bias_(sd: dict[str, Tensor], seed: int) -> None:
    """V-I output biases spread over [-3, 3], at least 0.5 away from logit(0.3), so that
    the pseudo label y_t mixes ones and zeros (random weights alone give sigma ~ 0.5)."""
    g = torch.Generator().manual_seed(seed)
    b = torch.rand(26, generator=g) * 6 - 3
    near = (b - TAU_LOGIT).abs() < 0.5
    b[near] = TAU_LOGIT + 0.5 * torch.where(b[near] >= TAU_LOGIT, 1.0, -1.0)
    sd["VI_ffn.5.bias"] = b


def tie_state_dict(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """Body and context predict the same constant logits (zero theta, equal biases far
    from any label): f_body = f_ctx exactly, both above f_head."""
    tie = dict(sd)
    bias = torch.where(torch.arange(26) % 2 == 0, 6.0, -6.0)
    for lvl in ("body", "ctx"):
        tie[f"cls_HFE_{lvl}.4.weight"] = torch.zeros_like(sd[f"cls_HFE_{lvl}.4.weight"])
        tie[f"cls_HFE_{lvl}.4.bias"] = bias.clone()
    return tie


def cocoer_batch(inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """The same persons in cocoer's data contract (boxes normalised by the 224 frame)."""
    out = {k: inputs[k] for k in ("context", "body", "head")}
    out["body_box"] = inputs["body_box"].float() / 224
    out["head_box"] = inputs["head_box"].float() / 224
    return out


def run_cocoer(net: torch.nn.Module, inputs: dict[str, Tensor]) -> dict[str, Any]:
    with torch.no_grad():
        out = net(cocoer_batch(inputs))
    levels = out["logits_levels"]
    return {
        "out_all": out["logits_G"], "label_VI": out["logits_t"], "label_head": levels[:, 2],
        "label_body": levels[:, 1], "label_ctx": levels[:, 0], "f": out["f"],
        "exclusion": [[LEVEL_NAMES[int(i)] for i in row] for row in out["order"]],
    }  # fmt: skip


def compare(theirs: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    diff = {k: float((theirs[k] - ours[k]).abs().max()) for k in A.OUT_KEYS}
    f = ours["f"].sort(-1).values
    return {
        "max_abs_diff": diff,
        "exclusion_equal": theirs["exclusion"] == ours["exclusion"],
        "exclusion_authors": theirs["exclusion"],
        "exclusion_cocoer": ours["exclusion"],
        "margins": {
            "min_abs_logit_t_minus_logit_0.3": float((ours["label_VI"] - TAU_LOGIT).abs().min()),
            "min_gap_between_level_losses": float(f.diff(dim=-1).min()),
        },
    }


def convert(work: Path, gwt: Path, preset: str, tag: str) -> tuple[torch.nn.Module, dict]:
    """``cocoer-convert`` into work/<tag>.ckpt; the converted net (eval) and its report."""
    out, report = work / f"{tag}.ckpt", work / f"{tag}_report.json"
    argv = [str(gwt), "--out", str(out), "--preset", preset, "--report", str(report),
            "--clip-weights", str(work / "RN50.pt"),
            "--vi-weights", str(work / "checkpoints" / "VI_weights" / "w.pth")]  # fmt: skip
    code = convert_run(convert_args(argv))
    if code != 0:
        sys.exit(f"cocoer-convert failed for {preset} (exit {code})")
    net = load_model(out).net
    return net.eval(), json.loads(report.read_text())


def run_authors(model: torch.nn.Module, sd: dict, mode: str, lr: float, inputs: dict) -> dict:
    model.load_state_dict(sd)  # fresh running statistics for every mode
    model.args.inside_lr = lr
    A.set_mode(model, mode)
    return A.run_gwt(model, inputs, per_sample=(mode == "demo"))


def time_both(model, sd, net, inputs: dict, batches: list[int], repeat: int) -> dict[str, Any]:
    """Seconds per sample of both models in authors_eval mode, at each B."""
    model.load_state_dict(sd)
    model.args.inside_lr = 0.0
    A.set_mode(model, "eval")
    rows: dict[str, Any] = {}
    for B in batches:
        part = {k: v[:B] for k, v in inputs.items()}
        ours = lambda p=part: run_cocoer(net, p)
        theirs = lambda p=part: A.run_gwt(model, p, per_sample=False)
        ours()  # warm-up
        t_ours = best_of(ours, repeat, warmup=0) / B
        t_theirs = best_of(theirs, repeat, warmup=0) / B
        rows[f"B={B}"] = {"authors_s_per_sample": t_theirs, "cocoer_s_per_sample": t_ours,
                          "speedup": t_theirs / t_ours}  # fmt: skip
    return rows


def prepare(repo: Path, work: Path, seed: int) -> tuple[torch.nn.Module, dict, Path]:
    """The authors' files in ``work`` and their model (random weights)."""
    torch.save(A.random_openai_clip_state_dict(repo, seed), work / "RN50.pt")
    (work / "checkpoints" / "VI_weights").mkdir(parents=True, exist_ok=True)
    w = torch.nn.init.orthogonal_(
        torch.empty(1024, 1024), generator=torch.Generator().manual_seed(seed)
    )
    torch.save({"model": {"W.weight": w}}, work / "checkpoints" / "VI_weights" / "w.pth")
    model = A.build_model_gwt(repo, work, work / "RN50.pt", inside_lr=0.0)
    A.randomise_(model, seed)
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    spread_vi_bias_(sd, seed)
    model.load_state_dict(sd)
    gwt, _ = A.save_like_the_authors(model, work)
    return model, sd, gwt


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--authors-repo", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--work", type=Path, help="folder for the files (default: a temp dir)")
    p.add_argument("--persons", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args(argv)
    A.require_cvxopt()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result = benchmark(args, work.resolve())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("presets", "speed")}, indent=1)[:3000])
    print(f"wrote {args.out}")


def benchmark(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    model, sd, gwt = prepare(args.authors_repo.resolve(), work, args.seed)
    inputs = make_inputs(args.persons, args.seed)
    result: dict[str, Any] = {"presets": {}, "tie_case": {}}
    nets = {}
    for preset, (mode, lr) in PRESETS.items():
        net, report = convert(work, gwt, preset, preset)
        nets[preset] = net
        row = compare(run_authors(model, sd, mode, lr, inputs), run_cocoer(net, inputs))
        row["conversion"] = {k: len(report[k]) for k in ("mapped", "unused", "unexplained")}
        result["presets"][preset] = row
        print(preset, row["max_abs_diff"], row["exclusion_equal"], flush=True)
    tie = tie_state_dict(sd)
    torch.save({"model": tie}, work / "GWT_tie.pth")
    few = {k: v[:3] for k, v in inputs.items()}
    for preset, (mode, lr) in PRESETS.items():
        net, _ = convert(work, work / "GWT_tie.pth", preset, f"{preset}_tie")
        theirs, ours = run_authors(model, tie, mode, lr, few), run_cocoer(net, few)
        f = ours["f"]
        result["tie_case"][preset] = {
            "exclusion_equal": theirs["exclusion"] == ours["exclusion"],
            "exclusion_authors": theirs["exclusion"],
            "exclusion_cocoer": ours["exclusion"],
            "f_body_equals_f_ctx": bool((f[:, 1] == f[:, 0]).all()),
        }
        del net
    result["margins"] = {"min_abs_position_index_minus_6": min(
        position_margin(inputs["body_box"]), position_margin(inputs["head_box"]))}  # fmt: skip
    result["speed"] = time_both(model, sd, nets["authors_eval"], inputs, args.batches, args.repeat)
    result["machine"] = {"platform": platform.platform(), "torch": torch.__version__,
                         "torch_threads": torch.get_num_threads(),
                         "seconds_total": time.perf_counter() - t0}  # fmt: skip
    return result


if __name__ == "__main__":
    main()
