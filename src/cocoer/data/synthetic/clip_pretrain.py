"""A tiny CLIP that knows the generated classes: contrastive pre-training on the generated data.

Real CLIPs learn their vocabulary from image-caption pairs; this step does the same, at toy
scale, for the generated datasets, so that the V-I branch (docs/method.md section 3) starts from
a vision-language model that can tell the painted classes apart (a random-weight CLIP cannot).

Pairs: every train image of the generated dataset (read back from its files, resized to the
CLIP's input size like the context window) with the caption built from the prompt template and
the image's TRUE classes, e.g. "This photo shows anger emotion." or, for a multi-label image,
"This photo shows anger and fear emotion." (the planted conflicts keep their true caption: the
caption describes the majority of the levels). Like the many captions per image of real
image-text data, each epoch draws the caption anew: the class names in a random order, and for
a share ``single_caption_rate`` of the images one of their classes only. Without that the text
tower learns whole label sets and the single-class prompts the V-I branch uses match poorly
(measured on the smoke data: zero-shot test mAP 56 with fixed captions, 80 with drawn ones).
Loss: open_clip's own symmetric InfoNCE (:class:`open_clip.ClipLoss`) with the learnable logit
scale. Only train images are used.

Cache: ``<dataset dir>/cocoer_clip/{weights.pt, config.json}``; ``weights.pt`` is a plain state
dict (open_clip loads it with ``torch.load(weights_only=True)``); ``config.json`` holds the
pre-training config and ``key``, a hash of that config and of the generator's meta file. A
present cache with the same key is reused; any other key re-makes it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from cocoer.data.synthetic.render import META_NAME
from cocoer.data.windows import load_image
from cocoer.errors import InputError, MissingFileError
from cocoer.utils.files import atomic_write, atomic_write_text

CLIP_DIR = "cocoer_clip"
WEIGHTS_NAME = "weights.pt"


@dataclass(frozen=True)
class ClipPretrainConfig:
    """Contrastive pre-training of the tiny CLIP on the generated train images.

    Args:
        clip_name: open_clip model name (the project's tiny configs: ``cocoer-tiny-RN``).
        epochs: passes over the train images. batch_size: pairs per step.
        lr / weight_decay: AdamW. seed: initialisation and batch order.
        flip: random horizontal flips (the layout is symmetric).
        single_caption_rate: per epoch, the share of images captioned with one of their
            classes (drawn at random) instead of all of them.
    """

    clip_name: str = "cocoer-tiny-RN"
    epochs: int = 15
    batch_size: int = 64
    lr: float = 2.0e-3
    weight_decay: float = 0.05
    seed: int = 0
    flip: bool = True
    single_caption_rate: float = 0.5


def caption(names: list[str]) -> str:
    """The prompt template with one or more class names.

    >>> caption(["Anger"]), caption(["Anger", "Fear", "Pain"])
    ('This photo shows anger emotion.', 'This photo shows anger, fear and pain emotion.')
    """
    from cocoer.models.vi import PROMPT_TEMPLATE

    low = [n.lower() for n in names]
    joined = low[0] if len(low) == 1 else ", ".join(low[:-1]) + " and " + low[-1]
    return PROMPT_TEMPLATE.format(joined)


def cache_key(meta_path: Path, cfg: ClipPretrainConfig) -> str:
    """sha256 of the generator's meta file and of the pre-training config."""
    h = hashlib.sha256(meta_path.read_bytes())
    h.update(json.dumps(dataclasses.asdict(cfg), sort_keys=True).encode())
    return h.hexdigest()


def draw_captions(
    labels: list[list[int]], classes: list[str], rate: float, rng: np.random.Generator
) -> list[str]:
    """One caption per image: its class names in a random order, or (with probability
    ``rate``) one of its classes only.

    >>> rng, names = np.random.default_rng(0), ["Anger", "Pain", "Fear"]
    >>> sorted(set(draw_captions([[0, 2]] * 50, names, 0.0, rng)))
    ['This photo shows anger and fear emotion.', 'This photo shows fear and anger emotion.']
    >>> sorted(set(draw_captions([[0, 2]] * 50, names, 1.0, rng)))
    ['This photo shows anger emotion.', 'This photo shows fear emotion.']
    """
    out = []
    for lab in labels:
        names = [classes[c] for c in rng.permutation(lab)]
        if len(names) > 1 and rng.random() < rate:
            names = names[:1]
        out.append(caption(names))
    return out


def _pairs(base: Path, size: int) -> tuple[torch.Tensor, list[list[int]], list[str]]:
    """Train images [N, 3, size, size] uint8, their true classes and the class names."""
    meta = json.loads((base / META_NAME).read_text(encoding="utf-8"))
    classes: list[str] = meta["classes"]
    labels: dict[str, list[int]] = {}
    for m in meta["persons"]:
        if m["split"] == "train" and m.get("bad_case") is None:
            labels.setdefault(m["image"], m["labels"])
    images = []
    for rel in labels:
        img = load_image(base / rel).resize((size, size), Image.Resampling.BILINEAR)
        images.append(torch.from_numpy(np.asarray(img, np.uint8).copy()).permute(2, 0, 1))
    if not images:
        raise InputError(f"{base / META_NAME}: no train images to pre-train the CLIP on")
    return torch.stack(images), list(labels.values()), classes


def _train(
    clip: Any,
    images: torch.Tensor,
    labels: list[list[int]],
    classes: list[str],
    cfg: ClipPretrainConfig,
) -> float:
    """AdamW on open_clip's ClipLoss, captions drawn anew each epoch; returns the last
    epoch's mean loss."""
    import open_clip

    tokenizer = open_clip.get_tokenizer(cfg.clip_name)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    pcfg = open_clip.get_model_preprocess_cfg(clip)
    mean = torch.tensor(pcfg.get("mean", open_clip.OPENAI_DATASET_MEAN)).view(1, 3, 1, 1)
    std = torch.tensor(pcfg.get("std", open_clip.OPENAI_DATASET_STD)).view(1, 3, 1, 1)
    loss_fn = open_clip.ClipLoss()
    clip.token_embedding.requires_grad_(False)  # 49408 x D random codes: distinct enough
    params = [p for p in clip.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * -(-len(images) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps, pct_start=0.1)
    clip.train()
    last = float("nan")
    for _ in range(cfg.epochs):
        tokens = tokenizer(draw_captions(labels, classes, cfg.single_caption_rate, rng))
        perm = torch.randperm(len(images), generator=gen)
        losses = []
        for idx in perm.split(cfg.batch_size):
            if len(idx) < 2:
                continue
            x = images[idx].float() / 255.0
            if cfg.flip:
                flip = torch.rand(len(idx), generator=gen) < 0.5
                x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
            image_features, text_features, logit_scale = clip((x - mean) / std, tokens[idx])[:3]
            loss = loss_fn(image_features, text_features, logit_scale)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():  # as in open_clip's training loop
                clip.logit_scale.clamp_(0, np.log(100))
            losses.append(float(loss.detach()))
        last = float(np.mean(losses)) if losses else last
    return last


def pretrain_synthetic_clip(
    root: str | os.PathLike[str], cfg: ClipPretrainConfig | None = None, **overrides: Any
) -> Path:
    """Pre-train (or reuse) the tiny CLIP of the generated dataset at ``root``.

    Args:
        root: the generated dataset folder (holding ``cocoer_synthetic_meta.json``).
        cfg: the pre-training config (default :class:`ClipPretrainConfig`); ``overrides``
            replace its fields.

    Returns:
        The path of ``weights.pt`` (for ``model.net.vi.clip_weights_path``).
    """
    from cocoer.models.vi import build_clip

    base = Path(root)
    cfg = dataclasses.replace(cfg or ClipPretrainConfig(), **overrides)
    meta_path = base / META_NAME
    if not meta_path.is_file():
        raise MissingFileError(f"{meta_path}: not a generated dataset (no meta file)")
    out_dir = base / CLIP_DIR
    key = cache_key(meta_path, cfg)
    weights = out_dir / WEIGHTS_NAME
    config_path = out_dir / "config.json"
    if weights.is_file() and config_path.is_file():
        try:
            if json.loads(config_path.read_text(encoding="utf-8")).get("key") == key:
                return weights
        except json.JSONDecodeError:
            pass  # a broken config: re-make
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    clip: Any = build_clip(cfg.clip_name)
    size = clip.visual.image_size
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    images, labels, classes = _pairs(base, size)
    t_load = time.perf_counter() - t0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these tiny convolutions run faster on one thread than on two
    try:
        with torch.inference_mode(False), torch.enable_grad():
            final_loss = _train(clip, images, labels, classes, cfg)
    finally:
        torch.set_num_threads(threads)
    clip.requires_grad_(True).eval()
    # atomic: concurrent jobs never read half a file
    atomic_write(weights, lambda f: torch.save(clip.state_dict(), f))
    info = {
        "key": key,
        "config": dataclasses.asdict(cfg),
        "images": len(labels),
        "final_loss": round(final_loss, 4),
        "seconds": round(time.perf_counter() - t0, 2),
        "seconds_loading": round(t_load, 2),
    }
    atomic_write_text(config_path, json.dumps(info, indent=1) + "\n")
    print(f"[cocoer.data] pre-trained the synthetic CLIP: {info}", flush=True)
    return weights
