"""The model card (``README.md``) of a hub folder, generated from the run that made the model.

:func:`render_card` fills the template ``cocoer/resources/model_card.md`` (``$name``
placeholders, :class:`string.Template`) from the folder's ``config.json``, the run's
``metrics.json`` (test metrics, beside the paper's numbers from :mod:`cocoer.runs.paper`)
and its ``config.yaml`` (seed, epochs, data). The YAML front matter holds the Hub's
metadata: ``library_name``, ``license``, ``tags``, ``datasets``, ``metrics``, ``model-index``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import yaml

from cocoer.constants import LEVELS
from cocoer.runs.paper import FIRST_EXCLUDED, MAIN

TEMPLATE = Path(__file__).resolve().parents[1] / "resources" / "model_card.md"
_HEADS = (("", "final prediction"), ("_t", "V-I head"), ("_c", "context level"),
          ("_b", "body level"), ("_h", "head level"))  # fmt: skip
_RULES = {
    "f1": "per class, the score that maximises the class's F1 on the validation split",
    "pr_equal": "per class, where precision equals recall on the validation split",
    "fixed": "fixed (not calibrated)",
    "authors_demo": "the authors' demo value for every class (their release has no calibration)",
}


@dataclass(frozen=True)
class RunInfo:
    """What the card says about the run behind a model (all optional)."""

    metrics: Mapping[str, Any] | None = None
    run_config: Mapping[str, Any] | None = None
    repo_id: str = "ORG/NAME"


def dataset_of(config: Mapping[str, Any], run_config: Mapping[str, Any] | None) -> str:
    """``EMOTIC``, ``CAER-S`` or ``generated`` (the run's data; else guessed from k)."""
    rc = run_config or {}
    data = rc.get("data") or {}
    if data.get("synthetic") or data.get("synthetic_clip") or "synthetic" in (rc.get("tags") or []):
        return "generated"
    target = str(data.get("_target_", ""))
    if "CaerS" in target:
        return "CAER-S"
    if "Emotic" in target:
        return "EMOTIC"
    return "EMOTIC" if config["multi_label"] else "CAER-S"


def _fmt(value: Any) -> str:
    return f"{float(value):.2f}" if isinstance(value, (int, float)) else "not measured"


def metrics_table(config: Mapping[str, Any], info: RunInfo) -> str:
    """Markdown table: this model's test metrics beside the paper's (docs/method.md 6)."""
    dataset = dataset_of(config, info.run_config)
    paper_set = "EMOTIC" if config["multi_label"] else "CAER-S"
    name, paper, spread = MAIN[paper_set]
    metric = "mAP" if config["multi_label"] else "acc"
    m = info.metrics or {}
    rows = [f"| test metric | this model ({dataset}) | paper ({paper_set}) |", "|---|---|---|"]
    for suffix, label in _HEADS:
        ref = f"{paper:.2f} ± {spread:.2f}" if not suffix else "not reported"
        rows.append(f"| {metric} (%), {label} | {_fmt(m.get(f'test/{metric}{suffix}'))} | {ref} |")
    if "test/chance" in m:
        rows.append(f"| {metric} (%) of chance | {_fmt(m['test/chance'])} | |")
    for level in LEVELS:
        got = _fmt(m.get(f"test/first_excluded/{level}"))
        share = FIRST_EXCLUDED[paper_set][level]
        rows.append(f"| persons whose {level} is excluded first (%) | {got} | {share:.2f} |")
    notes = []
    if not info.metrics:
        notes.append(
            "No test metrics came with this model; `cocoer-eval --model NAME` measures them "
            f"on your copy of the data. The paper's {name} is the authors' own report."
        )
    if dataset != paper_set:
        notes.append(
            f"This model was trained and tested on {dataset} data, the paper on {paper_set}: "
            "the two columns are not comparable."
        )
    return "\n".join(rows) + ("\n\n" + " ".join(notes) if notes else "")


def training_text(config: Mapping[str, Any], info: RunInfo) -> str:
    """Data, run settings and hyper-parameters (no local paths)."""
    rc = info.run_config or {}
    dataset = dataset_of(config, rc)
    data_line = {
        "generated": "images generated in the EMOTIC layout (`cocoer.data.synthetic`: classes "
        "painted as colours on head, body and scene); predictions on real photos mean nothing",
        "EMOTIC": "EMOTIC (26 categories, multi-label; train / val / test splits of the "
        "dataset's annotations)",
        "CAER-S": "CAER-S (7 classes, single label; frames of TV shows)",
    }[dataset]
    lines = [f"- data: {data_line}"]
    trainer = rc.get("trainer") or {}
    run = {k: v for k, v in (("seed", rc.get("seed")), ("epochs", trainer.get("max_epochs")),
                             ("tags", rc.get("tags"))) if v is not None}  # fmt: skip
    if run:
        lines.append("- run: " + ", ".join(f"{k} {v}" for k, v in run.items()))
    for key in ("loss", "optimizer", "scheduler"):
        value = (config.get("training") or {}).get(key)
        if value:
            lines.append(f"- {key}: `{json.dumps(value, sort_keys=True)}`")
    source = config.get("source") or {}
    if source.get("kind") == "converted":
        lines.append(
            "- converted from the authors' released weights (`cocoer-convert`, "
            "docs/authors_model.md); trained by the authors on EMOTIC"
        )
    lines.append("- the complete model config is `net` in `config.json`")
    return "\n".join(lines)


def _metadata(config: Mapping[str, Any], info: RunInfo, title: str) -> str:
    dataset = dataset_of(config, info.run_config)
    metric = "mAP" if config["multi_label"] else "accuracy"
    meta: dict[str, Any] = {"library_name": "cocoer"}
    if dataset == "generated":
        meta["license"] = "mit"
    else:
        meta.update(license="other", license_name="non-commercial-research-only")
    meta["tags"] = ["emotion-recognition", "context-aware-emotion-recognition", "cocoer",
                    "pytorch", "safetensors", "image-classification"]  # fmt: skip
    meta["datasets"] = [{"EMOTIC": "emotic", "CAER-S": "caer-s"}.get(dataset, "synthetic")]
    meta["metrics"] = ["map" if config["multi_label"] else "accuracy"]
    meta["pipeline_tag"] = "image-classification"
    key = "test/mAP" if config["multi_label"] else "test/acc"
    value = (info.metrics or {}).get(key)
    if isinstance(value, (int, float)):
        result = {
            "task": {"type": "image-classification", "name": "Emotion recognition"},
            "dataset": {"name": dataset, "type": meta["datasets"][0], "split": "test"},
            "metrics": [{"type": meta["metrics"][0], "value": round(float(value), 2),
                         "name": f"test {metric}"}],
        }  # fmt: skip
        meta["model-index"] = [{"name": title, "results": [result]}]
    return yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).strip()


def render_card(config: Mapping[str, Any], info: RunInfo, sha256: str, size: int) -> str:
    """The model card of a hub folder (``config``: its config.json as a dict)."""
    net = config["net"]
    names = list(config["class_names"])
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    dataset = dataset_of(config, info.run_config)
    source = config.get("source") or {}
    title = f"CocoER: {info.repo_id.split('/')[-1]}"
    summary = (
        "Trained on generated data for tests and demonstrations: it shows the mechanism, "
        "it does not recognise emotions in real photos."
        if dataset == "generated"
        else f"Trained on {dataset}; read the intended and prohibited uses below before use."
    )
    thr = config.get("thresholds") or {}
    extra = (
        "- This model has seen only generated images: its outputs on real photos are noise.\n"
        if dataset == "generated"
        else ""
    )
    values = {
        "metadata": _metadata(config, info, title),
        "title": title,
        "summary": summary,
        "num_classes": len(names),
        "task": "multi-label" if config["multi_label"] else "single label",
        "class_names": shown,
        "image_size": net["hfe"]["image_size"],
        "backbone": net["hfe"]["backbone"],
        "clip": net["vi"]["clip_name"],
        "d_h": net["hfe"]["d_h"],
        "d": net["d"],
        "threshold_rule": _RULES.get(str(thr.get("rule")), str(thr.get("rule"))),
        "source": f"{source.get('kind', 'unknown')} `{source.get('file', '')}`",
        "size_mb": f"{size / 1e6:.1f}",
        "sha256": sha256,
        "cocoer_version": config["cocoer_version"],
        "metrics_table": metrics_table(config, info),
        "training": training_text(config, info),
        "repo_id": info.repo_id,
        "extra_limitations": extra,
        "license_text": "MIT (trained on generated data only)"
        if dataset == "generated"
        else f"non-commercial research only (trained on {dataset})",
    }
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(values)
