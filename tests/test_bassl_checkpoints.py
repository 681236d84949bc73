"""BaSSL's released Lightning checkpoints in ``vseg embed`` (and so in ``vseg scenes --encoder``): every tensor mapped
and shape-checked, the features of its ``extract_shot_repr.py``, and one line for a wrong file."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from vseg.cli import app
from vseg.errors import DataError
from vseg.eval.embed import load_shot_encoder
from vseg.io.embeddings import read_embeddings
from vseg.models.bassl import CrnConfig, build_bassl

TINY_CRN = CrnConfig(input_dim=512, hidden=32, heads=4, intermediate=64, shots=17)


def lightning_checkpoint(path: Path, seed: int = 0, **edits) -> dict[str, torch.Tensor]:
    """A checkpoint laid out as BaSSL's Lightning ``model.ckpt`` (``PretrainingWrapper``: shot_encoder, crn, loss),
    BN statistics randomised so that eval mode matters; ``edits`` replace (None: drop) state-dict entries."""
    torch.manual_seed(seed)
    model = build_bassl("resnet18", TINY_CRN, head_hidden=64, head_dim=16)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    state = dict(model.state_dict())
    state["crn.attention_mask"] = torch.zeros(1, 1, 1, 18)  # TransformerCRN's constant buffer
    for name, value in edits.items():
        if value is None:
            state.pop(name)
        else:
            state[name] = value
    torch.save(
        {"epoch": 9, "global_step": 100, "pytorch-lightning_version": "1.3.8", "state_dict": state,
         "optimizer_states": [{"state": {}, "param_groups": []}], "lr_schedulers": [], "callbacks": {}},
        path,
    )  # fmt: skip
    return state


def test_release_checkpoint_gives_the_features_of_extract_shot_repr(synth_root, tmp_path):
    state = lightning_checkpoint(tmp_path / "model.ckpt")
    loaded = load_shot_encoder(tmp_path / "model.ckpt")
    assert (loaded.layout, loaded.arch, loaded.view) == ("BaSSL release", "resnet18", "bassl")
    assert loaded.keyframes_per_shot == 3
    assert loaded.encoder.feature_dim == 512
    root = tmp_path / "movienet"
    (root / "240P").mkdir(parents=True)
    movie = sorted(p.name for p in (synth_root / "240P").iterdir())[0]
    shutil.copytree(synth_root / "240P" / movie, root / "240P" / movie)
    out = tmp_path / "out"
    result = _invoke(["embed", str(tmp_path / "model.ckpt"), "--data", str(root), "--out", str(out),
                      "--image-size", "64", "--workers", "0"])  # fmt: skip
    assert result.exit_code == 0, result.output
    embeddings = read_embeddings(out / "all.npz")
    assert embeddings.features.shape == (40, 512)
    # BaSSL's TEST.TRANSFORM (VideoResizedCenterCrop 256/224 bicubic, VideoToTensor) per keyframe, at 64 px, the
    # ResNet on each keyframe, the 3 features averaged (PretrainingWrapper.extract_shot_representation).
    transform = T.Compose(
        [T.Resize(73, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(64), T.ToTensor(),
         T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])]
    )  # fmt: skip
    model = build_bassl("resnet18", TINY_CRN, head_hidden=64, head_dim=16)
    model.load_state_dict({k: v for k, v in state.items() if k != "crn.attention_mask"})
    encoder = model.shot_encoder.eval()
    keyframes = root / "240P" / movie
    with torch.no_grad():
        expected = torch.stack(
            [
                torch.stack(
                    [encoder(transform(Image.open(keyframes / f"shot_{s:04d}_img_{j}.jpg").convert("RGB"))[None])[0]
                     for j in range(3)]
                ).mean(0)
                for s in range(4)
            ]
        ).numpy()  # fmt: skip
    scale = np.abs(expected).max()
    np.testing.assert_allclose(embeddings.features[:4], expected, rtol=1e-3, atol=1e-3 * scale)


def _invoke(args: list[str]):
    from typer.testing import CliRunner

    return CliRunner().invoke(app, args)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"shot_encoder.layer2.0.bn1.weight": None},
         "1 resnet18 shot encoder weights missing: shot_encoder.layer2.0.bn1.weight"),
        ({"shot_encoder.layer1.0.conv1.weight": torch.zeros(64, 64, 1, 1)},
         "shot_encoder.layer1.0.conv1.weight has shape (64, 64, 1, 1), expected (64, 64, 3, 3)"),
        ({"shot_encoder.fc.weight": torch.zeros(10, 512)}, "shot_encoder.fc.weight is no tensor of the resnet18 shot encoder"),
        ({"backbone.extra": torch.zeros(1)}, "backbone.extra belongs to no BaSSL module (shot_encoder, crn, loss)"),
    ],
)
def test_a_wrong_bassl_checkpoint_is_one_line_and_writes_nothing(tmp_path, synth_root, edit, message):
    lightning_checkpoint(tmp_path / "model.ckpt", **edit)
    with pytest.raises(DataError, match=re.escape(message)):
        load_shot_encoder(tmp_path / "model.ckpt")
    result = _invoke(["embed", str(tmp_path / "model.ckpt"), "--data", str(synth_root), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()
