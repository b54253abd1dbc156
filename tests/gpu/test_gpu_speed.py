"""GPU paths of the throughput work: the windows cache's device-side augmentation, channels-last
and compile under bf16 autocast, ONNX Runtime's CUDA provider. Marker ``gpu`` (``make
test-gpu``); skipped without a CUDA device."""

from __future__ import annotations

import copy

import pytest
import torch

from cocoer.callbacks.speed import SpeedConfig, apply_speed_options
from cocoer.data.tensor_augment import finish_batch
from cocoer.models import create_model
from tests.support.helpers import requires_cuda

pytestmark = [pytest.mark.gpu, requires_cuda]


def _uint8_batch(n: int = 6, size: int = 32) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    out = {
        k: torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen)
        for k in ("context", "body", "head")
    }
    out["jitter"] = 0.8 + 0.4 * torch.rand(n, 3, generator=gen)
    out["flip"] = torch.tensor([True, False] * (n // 2))
    return out


def test_finish_batch_on_cuda_matches_cpu() -> None:
    cpu = _uint8_batch()
    ref = finish_batch(dict(cpu))
    got = finish_batch({k: v.cuda() for k, v in cpu.items()})
    for k in ("context", "body", "head"):
        torch.testing.assert_close(got[k].cpu(), ref[k], atol=1e-5, rtol=0)
    plain = {k: cpu[k] for k in ("context", "body", "head")}
    exact = finish_batch({k: v.cuda() for k, v in plain.items()})
    assert torch.equal(exact["head"].cpu(), finish_batch(plain)["head"])


@pytest.mark.parametrize("cfg", [SpeedConfig(channels_last=True), SpeedConfig(compile=True)])
def test_speed_options_on_cuda_bf16_close_to_eager(cfg: SpeedConfig) -> None:
    torch.manual_seed(0)
    eager = create_model("cocoer_tiny", data="emotic_synthetic", num_classes=5).cuda().eval()
    fast = apply_speed_options(copy.deepcopy(eager), cfg)
    size = eager.cfg.hfe.image_size
    batch = {k: torch.randn(4, 3, size, size, device="cuda") for k in ("context", "body", "head")}
    batch["body_box"] = torch.tensor([[0.2, 0.1, 0.7, 0.95]], device="cuda").repeat(4, 1)
    batch["head_box"] = torch.tensor([[0.35, 0.1, 0.55, 0.3]], device="cuda").repeat(4, 1)
    with torch.no_grad(), torch.autocast("cuda", torch.bfloat16):
        a, b = eager(batch)["logits_G"].float(), fast(batch)["logits_G"].float()
    assert float((a - b).abs().max()) <= 0.05 * max(float(a.abs().max()), 1.0)


def test_onnxruntime_cuda_provider_is_available() -> None:
    ort = pytest.importorskip("onnxruntime")
    assert "CUDAExecutionProvider" in ort.get_available_providers()
