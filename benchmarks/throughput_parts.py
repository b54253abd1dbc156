"""Parts of benchmarks/train_throughput.py: the model and its training step, FLOPs, memory,
the two loaders, and the honest-figures helpers (machine load, interleaved runs)."""

from __future__ import annotations

import dataclasses
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from cocoer.callbacks.speed import SpeedConfig, apply_speed_options
from cocoer.data import EmoticDataModule
from cocoer.data.tensor_augment import finish_batch
from cocoer.models.factory import model_config
from cocoer.training.module import CocoERLitModule
from cocoer.training.optim import build_optimizer

#: peak dense bf16 tensor FLOP/s (vendor figures) of the devices the floor is projected on
PEAK_BF16 = {"A100": 312e12, "H100 SXM": 989e12, "H100 PCIe": 756e12, "H200": 989e12}
PRESETS = {"paper": "cocoer_paper", "tiny": "cocoer_tiny"}


def load() -> list[float]:
    """1/5/15-minute load averages (other processes on a shared machine slow the figures)."""
    return [round(v, 2) for v in os.getloadavg()]


def cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where it cannot be read)."""
    try:
        block = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    except OSError:
        return {}
    pairs = (line.split(":", 1) for line in block.splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def cpu_name() -> str:
    """e.g. ``AMD EPYC (AuthenticAMD family 23 model 1)``, or the platform's processor."""
    info = cpuinfo()
    if not info:
        return platform.processor() or "unknown CPU"
    return (
        f"{info.get('model name', '?')} ({info.get('vendor_id', '?')} family "
        f"{info.get('cpu family', '?')} model {info.get('model', '?')})"
    )


def machine(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cpu": cpu_name(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if device.type == "cuda":
        info["cuda"] = torch.version.cuda
        info["gpu_memory_gib"] = round(
            torch.cuda.get_device_properties(device).total_memory / 2**30, 1
        )
    return info


def build(preset: str, size: int, device: torch.device, speed: SpeedConfig) -> CocoERLitModule:
    """The preset's LightningModule (EMOTIC's 26 classes, random weights, nothing downloaded)."""
    cfg = model_config(PRESETS[preset], data="emotic", pretrained=False)
    cfg.hfe.image_size = size
    torch.manual_seed(0)
    lit = CocoERLitModule(net=dataclasses.asdict(cfg)).to(device)
    apply_speed_options(lit.net, speed)
    return lit


def batch_on(n: int, size: int, device: torch.device, seed: int = 0) -> dict[str, Tensor]:
    """A device-resident batch of the data contract (normalised windows, boxes, labels)."""
    gen = torch.Generator().manual_seed(seed)
    out = {k: torch.randn(n, 3, size, size, generator=gen) for k in ("context", "body", "head")}
    out["body_box"] = torch.tensor([[0.2, 0.1, 0.7, 0.95]]).repeat(n, 1)
    out["head_box"] = torch.tensor([[0.35, 0.1, 0.55, 0.3]]).repeat(n, 1)
    out["labels"] = (torch.rand(n, 26, generator=gen) < 0.15).float()
    return {k: v.to(device) for k, v in out.items()}


class Step:
    """One training step of ``lit`` as Lightning runs it (forward, EmoLoss, backward, Adam),
    under bf16 autocast when ``bf16``."""

    def __init__(self, lit: CocoERLitModule, bf16: bool) -> None:
        self.lit, self.bf16 = lit.train(), bf16
        trainable = (p for p in lit.parameters() if p.requires_grad)
        self.opt, _ = build_optimizer(trainable, lit.options.optimizer, lit.options.scheduler)
        self.device = next(lit.parameters()).device

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        lit = self.lit
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16):
            out = lit.net(batch)
            terms = lit.emo_terms(batch, out)
        return terms["loss"]

    def __call__(self, batch: dict[str, Tensor]) -> None:
        self.opt.zero_grad(set_to_none=True)
        self.loss(batch).backward()
        self.opt.step()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def interleaved(
    runs: dict[str, Callable[[], object]], device: torch.device, repeat: int, warm_up: bool = True
) -> dict[str, float]:
    """Best time of each run over ``repeat`` rounds, the runs alternating within a round (so a
    change of machine load hits all of them alike); one untimed warm-up round first unless
    ``warm_up`` is false (the caller warmed them up)."""
    for fn in runs.values() if warm_up else ():
        fn()
    best = {k: float("inf") for k in runs}
    for _ in range(repeat):
        for k, fn in runs.items():
            best[k] = min(best[k], timed(fn, device))
    return best


def flops_per_sample(step: Step, batch: dict[str, Tensor]) -> dict[str, float]:
    """FLOPs per sample counted by ``torch.utils.flop_counter`` (matmuls / convolutions; the
    elementwise work is not counted): the forward in eval mode and the training step."""
    n = batch["labels"].shape[0]
    lit = step.lit
    with FlopCounterMode(display=False) as fwd:
        lit.eval()
        with torch.no_grad():
            lit.net(batch)
    lit.train()
    with FlopCounterMode(display=False) as train:
        step.opt.zero_grad(set_to_none=True)
        step.loss(batch).backward()
    return {"forward": fwd.get_total_flops() / n, "train_step": train.get_total_flops() / n}


def _status_gib(field: str) -> float | None:
    """A size field of /proc/self/status (``VmRSS``, ``VmHWM``) in GiB; None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024 / 2**30
    except (OSError, ValueError, IndexError):
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the process's peak resident set size (``VmHWM``) to its current size (Linux:
    writing 5 to /proc/self/clear_refs); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def memory(step: Step, batch: dict[str, Tensor]) -> dict[str, float]:
    """Bytes of the step: parameters, gradients, Adam state, and the activations saved for
    backward (counted exactly with saved-tensor hooks, storages counted once); the measured
    peak: on CUDA the allocator's peak, on the CPU the process's peak resident set size
    during the step (``VmHWM`` reset just before it; it includes the parameters, the Adam
    state, the Python heap and oneDNN's workspaces) and the resident size before it."""
    lit, dev = step.lit, step.device
    params = sum(p.numel() * p.element_size() for p in lit.parameters())
    trainable = sum(p.numel() * p.element_size() for p in lit.parameters() if p.requires_grad)
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        try:
            st = t.untyped_storage()
            seen[st.data_ptr()] = st.nbytes()
        except (RuntimeError, NotImplementedError):
            pass
        return t

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    rss_before = _status_gib("VmRSS")
    rss_reset = dev.type == "cpu" and reset_peak_rss()
    step.opt.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = step.loss(batch)
    loss.backward()
    step.opt.step()
    sync(dev)
    out = {
        "parameters_gib": params / 2**30,
        "gradients_gib": trainable / 2**30,
        "adam_state_gib": 2 * trainable / 2**30,
        "saved_activations_gib": sum(seen.values()) / 2**30,
    }
    if dev.type == "cuda":
        out["cuda_peak_allocated_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
    peak_rss = _status_gib("VmHWM")
    if rss_reset and peak_rss is not None and rss_before is not None:
        out["cpu_rss_before_step_gib"] = rss_before
        out["cpu_peak_rss_during_step_gib"] = peak_rss
    return {k: round(v, 3) for k, v in out.items()}


def workspace_share(step: Step, batch: dict[str, Tensor], repeat: int) -> dict[str, float]:
    """Time of the workspace (forward + backward on the inputs it gets in a real step) against
    the whole step, same batch."""
    ws = step.lit.net.workspace
    got: dict[str, Any] = {}

    def grab(_module: Any, args: tuple[Any, ...]) -> None:
        got["args"] = args

    handle = ws.register_forward_pre_hook(grab)
    step(batch)
    handle.remove()
    levels, z, l_, cache, y_t = got["args"]

    def det(x: Any) -> Any:
        if isinstance(x, Tensor):
            return x.detach().requires_grad_(x.is_floating_point())
        if isinstance(x, (tuple, list)):
            return type(x)(det(v) for v in x)
        if isinstance(x, dict):
            return {k: det(v) for k, v in x.items()}
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            fields = {f.name: det(getattr(x, f.name)) for f in dataclasses.fields(x)}
            return dataclasses.replace(x, **fields)
        return x

    z, l_, cache = det(z), det(l_), det(cache)

    def ws_only() -> None:
        with torch.autocast(step.device.type, torch.bfloat16, enabled=step.bf16):
            out = ws(levels, z, l_, cache, y_t.detach())
        out.z_hat.float().sum().backward()

    t = interleaved({"step": lambda: step(batch), "workspace": ws_only}, step.device, repeat)
    return {
        "step_s": round(t["step"], 4),
        "workspace_s": round(t["workspace"], 4),
        "share": round(t["workspace"] / t["step"], 4),
    }


LOADERS = ("pil", "windows_cache")


def data_modules(
    root: Path, size: int, batch: int, workers: int, which: tuple[str, ...] = LOADERS
) -> dict[str, EmoticDataModule]:
    """Today's loader (``pil``) and the windows cache (``windows_cache``), same data,
    augmentation on."""
    out = {}
    for name in which:
        cache = name == "windows_cache"
        dm = EmoticDataModule(
            root,
            image_size=size,
            batch_size=batch,
            num_workers=workers,
            windows_cache=cache,
            windows_cache_dir=root / "cocoer_windows",
            augment=True,
            box_cache=False,
        )
        dm.setup("fit")
        out[name] = dm
    return out


def loader_pass(dm: EmoticDataModule, finish: bool, limit: int | None = None) -> Callable[[], int]:
    """A pass over the train loader (``finish``: also the on-device share of the cache's
    augmentation, here on the CPU); returns the samples it delivered."""

    def run() -> int:
        n = 0
        for i, batch in enumerate(dm.train_dataloader()):
            if finish:
                finish_batch(batch)
            n += int(batch["index"].numel())
            if limit is not None and i + 1 >= limit:
                break
        return n

    return run


@contextmanager
def threads(n: int) -> Iterator[None]:
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)
