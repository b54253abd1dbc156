"""Turn a multirun directory into the paper's tables (``cocoer-aggregate SWEEP_DIR [--out
DIR]``, :mod:`cocoer.cli.aggregate`).

Reads every job of the sweep (its ``config.yaml`` with the ``ablation`` node written by
``conf/hparams_search``, ``overrides.txt``, ``metrics.json``, ``done`` / ``failed.json``) and
writes, into ``--out`` (default ``SWEEP_DIR/summary``):

- ``jobs.csv``: one line per job (status, overrides, metrics);
- ``<ablation>.csv`` and a section of ``tables.md`` per ablation (Table 4a-e, Table 3,
  Fig. 2): ours (mean +- std over seeds, number of runs) beside the paper's number, and the
  test VAD mean absolute error (``ours vad_mae``, beside ``training mean``) for the rows whose
  runs have the valence / arousal / dominance head;
- ``first_excluded.csv`` and its section of ``tables.md`` (Table 5 form);
- ``<ablation>.png``: our metric against the swept value, with the paper's numbers.

The Markdown is also printed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cocoer.constants import LEVELS
from cocoer.errors import InputError, MissingFileError
from cocoer.runs.jobs import DONE, FAILED, METRICS
from cocoer.runs.paper import ABLATIONS, FIRST_EXCLUDED, paper_value
from cocoer.utils.files import atomic_save_as, atomic_write_text, loads_json, printable


def _read_overrides(job: Path) -> list[str]:
    if (job / "overrides.txt").is_file():
        return [x for x in (job / "overrides.txt").read_text().splitlines() if x]
    hydra_over = job / ".hydra" / "overrides.yaml"
    if hydra_over.is_file():
        return [str(x) for x in OmegaConf.load(hydra_over)]
    return []


def _read_config(job: Path) -> dict[str, Any]:
    """The resolved config.yaml; else what can be resolved of Hydra's copy (failed jobs)."""
    for path in (job / "config.yaml", job / ".hydra" / "config.yaml"):
        if path.is_file():
            cfg = OmegaConf.load(path)
            if not isinstance(cfg, DictConfig):
                raise InputError(path, "not a YAML mapping")
            out: dict[str, Any] = {}
            for key in ("ablation", "seed", "data", "tags"):
                try:
                    out[key] = (
                        OmegaConf.to_container(cfg[key], resolve=True)
                        if isinstance(cfg, DictConfig) and key in cfg
                        else None
                    )
                except Exception:  # an interpolation that needs Hydra's runtime
                    out[key] = None
            return out
    return {}


def find_jobs(sweep_dir: str | Path) -> list[Path]:
    """Job directories under ``sweep_dir``: those Hydra or cocoer wrote a job record into."""
    root = Path(sweep_dir)
    marks = ("config.yaml", FAILED, ".hydra")
    jobs = {
        p.parent
        for m in marks
        for p in root.rglob(m)
        if p.parent != root and "summary" not in p.parent.parts and p.parent.name != ".hydra"
    }
    return sorted(jobs)


def _status(job: Path) -> str:
    if (job / DONE).is_file():
        return "done"
    if (job / FAILED).is_file():
        return "failed"
    return "unfinished"


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object of a job's record ({} when absent); InputError when damaged."""
    if not path.is_file():
        return {}
    data = loads_json(path.read_bytes(), path)
    if not isinstance(data, dict):
        raise InputError(path, f"holds a JSON {type(data).__name__}, not an object")
    return data


def collect(sweep_dir: str | Path) -> pd.DataFrame:
    """One row per job: status, ablation, row label, seed, dataset, overrides and metrics.

    A job whose records cannot be read (a truncated ``metrics.json``, an empty
    ``failed.json``, a ``config.yaml`` that is not YAML) is a row with status ``damaged``
    and the reason in ``error``; the other jobs are aggregated as usual."""
    root = Path(sweep_dir)
    rows = []
    for job in find_jobs(root):
        try:
            rows.append(_job_row(root, job))
        except (InputError, OSError, ValueError, TypeError, AttributeError,
                OmegaConfBaseException, yaml.YAMLError) as exc:  # fmt: skip
            reason = printable(" ".join(str(exc).split()) or type(exc).__name__)
            rows.append({"job": str(job.relative_to(root)), "status": "damaged", "error": reason})
    return pd.DataFrame(rows)


def _job_row(root: Path, job: Path) -> dict[str, Any]:
    """The row of one job (raises when one of its records is damaged)."""
    cfg = _read_config(job)
    ablation = cfg.get("ablation") or {}
    data = cfg.get("data") or {}
    metrics = _read_json(job / METRICS)
    multi = bool(data.get("multi_label", True))
    row: dict[str, Any] = {
        "job": str(job.relative_to(root)),
        "status": _status(job),
        "ablation": ablation.get("name"),
        "row": None if ablation.get("row") is None else str(ablation.get("row")),
        "seed": cfg.get("seed"),
        "dataset": "EMOTIC" if multi else "CAER-S",
        "metric": "mAP" if multi else "acc",
        "overrides": " ".join(_read_overrides(job)),
    }
    for k, v in metrics.items():
        if isinstance(v, int | float) and not isinstance(v, bool):
            row[k] = float(v)
    if row["status"] == "failed":
        row["error"] = printable(_read_json(job / FAILED).get("message"))
    return row


def _fmt(mean: float, std: float, n: int) -> str:
    if n > 1 and not math.isnan(std):
        return f"{mean:.2f} ± {std:.2f}"
    return f"{mean:.2f}"


def _row_order(spec_rows: list[str], ours: list[str]) -> list[str]:
    def num(x: str) -> float | None:
        try:
            return float(x)
        except ValueError:
            return None

    known = [r for r in spec_rows if r in ours]
    extra = [r for r in ours if r not in known]
    if all(num(r) is not None for r in extra):
        extra.sort(key=lambda r: num(r) or 0.0)
    return known + extra


def ablation_table(jobs: pd.DataFrame, name: str) -> pd.DataFrame:
    """Ours (mean, std, n over the finished jobs of each row) beside the paper's number."""
    sub = jobs[(jobs["ablation"] == name) & (jobs["status"] == "done")]
    metric = sub["metric"].iloc[0] if len(sub) else "mAP"
    key = f"test/{metric}"
    spec = ABLATIONS.get(name)
    out = []
    for row in _row_order(list(spec.paper) if spec else [], list(dict.fromkeys(sub["row"]))):
        vals = sub.loc[sub["row"] == row, key].dropna() if key in sub else pd.Series([], float)
        n = len(vals)
        mean = float(vals.mean()) if n else float("nan")
        std = float(vals.std(ddof=1)) if n > 1 else float("nan")
        paper = paper_value(name, row)
        out.append(
            {
                (spec.param if spec else "row"): row,
                f"ours {metric}": _fmt(mean, std, n) if n else "–",
                "n": n,
                f"paper {metric}": f"{paper:.2f}" if paper is not None else "–",
                **_vad_cells(sub[sub["row"] == row]),
                "ours_mean": mean,
                "ours_std": std,
                "paper": paper,
            }
        )
    table = pd.DataFrame(out)
    if "ours vad_mae" in table:  # the rows without the head: no error
        table = table.fillna({"ours vad_mae": "–", "training mean": "–"})
    return table


def _vad_cells(jobs: pd.DataFrame) -> dict[str, str]:
    """``ours vad_mae`` (test, mean +- std over the jobs) and the ``training mean`` baseline's
    error, when the jobs have the VAD head; {} otherwise."""
    cells = {}
    for col, key in (("ours vad_mae", "test/vad_mae"), ("training mean", "test/vad_mae_baseline")):
        vals = jobs[key].dropna() if key in jobs else pd.Series([], dtype=float)
        if len(vals):
            std = float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")
            cells[col] = _fmt(float(vals.mean()), std, len(vals))
    return cells


def first_excluded_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """Table 5 form: our first-excluded level shares per ablation row, and the paper's."""
    cols = [f"test/first_excluded/{lvl}" for lvl in LEVELS]
    done = jobs[jobs["status"] == "done"]
    rows = []
    if all(c in done for c in cols) and len(done):
        keys = ["dataset", "ablation", "row"]
        done = done.assign(**{k: done[k].fillna("-") for k in keys})
        for (dataset, abl, row), grp in done.groupby(keys, sort=False):
            shares = {
                lvl: round(float(grp[c].mean()), 2) for lvl, c in zip(LEVELS, cols, strict=True)
            }
            rows.append({"dataset": dataset, "source": f"ours ({abl}={row})", **shares})
        for dataset in dict.fromkeys(done["dataset"]):
            if dataset in FIRST_EXCLUDED:
                rows.append({"dataset": dataset, "source": "paper", **FIRST_EXCLUDED[dataset]})
    return pd.DataFrame(rows)


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub Markdown table (no extra dependency)."""
    if df.empty:
        return "_no finished jobs_\n"
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join("" if pd.isna(v) else str(v) for v in r.tolist()) + " |")
    return "\n".join(lines) + "\n"


def plot_ablation(table: pd.DataFrame, name: str, path: Path) -> Path | None:
    """Our metric (with std bars) and the paper's against the swept value (PNG)."""
    if table.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = ABLATIONS.get(name)
    x = list(range(len(table)))
    labels = [str(v) for v in table.iloc[:, 0]]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(x) + 2), 3.2))
    ax.errorbar(x, table["ours_mean"], yerr=table["ours_std"].fillna(0.0), marker="o",
                capsize=3, label="ours")  # fmt: skip
    ax.set_ylabel("ours (test)")
    if table["paper"].notna().any():
        ax2 = ax.twinx()
        ax2.plot(x, table["paper"], "s--", color="tab:red", label="paper")
        ax2.set_ylabel("paper (EMOTIC test mAP)", color="tab:red")
    ax.set_xticks(x, labels, rotation=30 if max(map(len, labels)) > 6 else 0)
    ax.set_xlabel(spec.param if spec else name)
    ax.set_title(spec.title if spec else name, fontsize=9)
    fig.tight_layout()
    atomic_save_as(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
    return path


def aggregate(sweep_dir: str | Path, out: str | Path | None = None) -> str:
    """Write every table and plot of ``sweep_dir`` into ``out``; returns the Markdown."""
    root = Path(sweep_dir)
    if not root.is_dir():
        raise MissingFileError(f"no such sweep directory: {root}")
    out_dir = Path(out) if out else root / "summary"
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = collect(root)
    if jobs.empty:
        raise MissingFileError(f"no jobs found under {root}")
    atomic_write_text(out_dir / "jobs.csv", jobs.to_csv(index=False))
    counts = jobs["status"].value_counts().to_dict()
    md = [f"# Sweep {root}\n", "jobs: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + "\n"]
    for name in [a for a in dict.fromkeys(jobs["ablation"]) if isinstance(a, str)]:
        table = ablation_table(jobs, name)
        spec = ABLATIONS.get(name)
        shown = table.drop(columns=["ours_mean", "ours_std", "paper"], errors="ignore")
        atomic_write_text(out_dir / f"{name}.csv", shown.to_csv(index=False))
        md += [f"\n## {spec.title if spec else name}\n", to_markdown(shown)]
        plot_ablation(table, name, out_dir / f"{name}.png")
    fe = first_excluded_table(jobs)
    atomic_write_text(out_dir / "first_excluded.csv", fe.to_csv(index=False))
    md += ["\n## Table 5: first-excluded level (%)\n", to_markdown(fe)]
    failed = jobs[jobs["status"].isin(("failed", "damaged"))]
    if len(failed):
        md += ["\n## Failed jobs\n", to_markdown(failed[["job", "error"]])]
    text = "".join(md)
    atomic_write_text(out_dir / "tables.md", text)
    return text
