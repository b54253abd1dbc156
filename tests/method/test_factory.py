"""The model factory: presets, dataclasses and mappings give the same model config."""

from __future__ import annotations

from dataclasses import asdict, fields

import pytest
from omegaconf import OmegaConf

from cocoer.configs.schema import ModelConfig
from cocoer.models import CocoERConfig, create_model, list_presets, model_config
from cocoer.models.hfe import HFE, HFEConfig
from tests.support.helpers import compose_config


def test_presets_are_the_model_yamls():
    assert {"cocoer_tiny", "cocoer_paper"} <= set(list_presets())


@pytest.mark.parametrize(
    ("preset", "data"), [("cocoer_tiny", "emotic_synthetic"), ("cocoer_paper", "caer_s")]
)
def test_preset_equals_the_hydra_composition(preset: str, data: str, tmp_path):
    """The factory's reading of a preset YAML is what Hydra composes for model.net."""
    cfg = compose_config("train", tmp_path, overrides=[f"model={preset}", f"data={data}"])
    composed = OmegaConf.to_container(cfg.model.net, resolve=True)
    assert model_config(preset, data=data) == model_config(composed)


def test_mapping_with_target_and_overrides():
    net = {"_target_": "cocoer.models.cocoer.CocoER", "num_classes": 4, "multi_label": False}
    cfg = model_config(net, d=8, hfe={"image_size": 32}, vi={"tau": 0.5})
    assert (cfg.num_classes, cfg.multi_label, cfg.d) == (4, False, 8)
    assert cfg.hfe.image_size == 32 and cfg.hfe.backbone == HFEConfig().backbone
    assert cfg.vi.tau == 0.5
    assert model_config(cfg) == cfg  # a dataclass goes through unchanged


def test_pretrained_false_switches_downloads_off():
    cfg = model_config("cocoer_paper", pretrained=False)
    assert cfg.hfe.pretrained is False and cfg.vi.clip_pretrained is None
    assert model_config("cocoer_paper").hfe.pretrained is True


@pytest.mark.parametrize(
    ("cfg", "kwargs", "message"),
    [
        ({"num_classes": 3, "multi_label": True, "hfe": {"bogus": 1}}, {}, "bogus"),
        ({"multi_label": True}, {}, "num_classes"),
        ({"num_classes": "three", "multi_label": True}, {}, "num_classes"),
        ({"_target_": "x.Other", "num_classes": 3, "multi_label": True}, {}, "x.Other"),
        ("no_such_preset", {}, "no_such_preset"),
        ("cocoer_tiny", {"data": "no_such_data"}, "no_such_data"),
    ],
)
def test_bad_configs_fail_in_one_line(cfg, kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        model_config(cfg, **kwargs)
    assert "\n" not in str(info.value)


def test_create_model_builds_the_configured_model():
    model = create_model("cocoer_tiny", num_classes=3, hfe={"image_size": 32, "d_h": 16})
    assert model.num_classes == 3 and model.hfe.d_h == 16
    assert model.cfg == model_config(asdict(model.cfg))


def test_schema_uses_the_model_dataclass():
    """One declaration per option: the Hydra schema's net node is CocoERConfig itself."""
    net_type = {f.name: f for f in fields(ModelConfig)}["net"].type
    assert net_type in (CocoERConfig, "CocoERConfig")


def test_module_overrides_replace_config_fields():
    hfe = HFE(HFEConfig(backbone="tiny_cnn", tiny_width=4, d_h=8), image_size=32)
    assert (hfe.cfg.image_size, hfe.cfg.d_h) == (32, 8)
    with pytest.raises(TypeError):
        HFE(no_such_option=1)
