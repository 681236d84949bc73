"""BaSSL: the pieces of its objective against the reference's formulas, its windows, and a learning run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vseg.eval.probe import scene_probe
from vseg.io.checkpoints import load_checkpoint, strip_prefix
from vseg.models.bassl import (
    BasslShotEncoder,
    ContextualRelationNetwork,
    CrnConfig,
    build_bassl,
    group_partners,
    nt_xent,
    pseudo_boundary,
)
from vseg.train.methods.bassl import mask_shots, window_shots

TINY_CRN = CrnConfig(input_dim=512, hidden=32, heads=4, intermediate=64, shots=9)


def tslearn_split(cost: np.ndarray) -> int:
    """The last dense index aligned with sparse shot 0 by DTW on a 2 x N cost matrix, as tslearn's
    ``dtw_path_from_metric(metric="precomputed")`` finds it: accumulate, then backtrack from the end preferring the
    diagonal, then the vertical, then the horizontal step (``np.argmin`` takes the first of equal costs)."""
    rows, cols = cost.shape
    acc = np.full((rows + 1, cols + 1), np.inf)
    acc[0, 0] = 0
    for i in range(1, rows + 1):
        for j in range(1, cols + 1):
            acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
    acc = acc[1:, 1:]
    path = [(rows - 1, cols - 1)]
    while path[-1] != (0, 0):
        i, j = path[-1]
        if i == 0:
            path.append((0, j - 1))
        elif j == 0:
            path.append((i - 1, 0))
        else:
            step = int(np.argmin([acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]]))
            path.append([(i - 1, j - 1), (i - 1, j), (i, j - 1)][step])
    return max(j for i, j in path if i == 0)


def test_pseudo_boundary_is_the_dtw_split_of_the_reference():
    torch.manual_seed(0)
    sparse = F.normalize(torch.randn(200, 2, 8), dim=-1)
    dense = F.normalize(torch.randn(200, 17, 8), dim=-1)
    # ties: both sparse shots (1, 0, ...) and every dense shot (0.5, ...) cost exactly 0.5, so every split costs 8.5
    sparse[:50] = F.one_hot(torch.tensor(0), 8).float()
    dense[:50] = torch.tensor([0.5, 0.75**0.5, 0, 0, 0, 0, 0, 0])
    found = pseudo_boundary(sparse, dense)
    cost = (1 - torch.einsum("bsd,bnd->bsn", sparse, dense)).numpy()
    expected = [tslearn_split(c) for c in cost]
    assert found.tolist() == expected
    assert found[:50].tolist() == [15] * 50  # ties go to the last split, as tslearn's backtracking
    assert len(set(expected[50:])) > 5


def test_nt_xent_is_the_references_masked_infonce():
    torch.manual_seed(1)
    a, b = F.normalize(torch.randn(6, 16), dim=1), F.normalize(torch.randn(6, 16), dim=1)
    x = torch.cat([a, b])
    similarity = torch.exp(x @ x.T / 0.1)
    n = len(x)
    pos_mask = torch.zeros(n, n)
    pos_mask[torch.arange(n), (torch.arange(n) + 6) % n] = 1
    neg_mask = 1 - pos_mask - torch.eye(n)
    pos, neg = (similarity * pos_mask).sum(1), (similarity * neg_mask).sum(1)
    expected = -torch.log(pos / (pos + neg)).mean()
    assert torch.allclose(nt_xent(a, b, 0.1), expected, atol=1e-5)


def test_cgm_partners_are_in_the_right_groups_and_never_the_centre():
    torch.manual_seed(2)
    n = 17
    boundary = torch.arange(n - 1).repeat(200)
    own, other = group_partners(boundary, n)
    centre_group = (n // 2 > boundary).long()
    assert ((own > boundary).long() == centre_group).all() and (own != n // 2).all()
    assert ((other > boundary).long() != centre_group).all()
    assert own.min() >= 0 and own.max() < n and other.min() >= 0 and other.max() < n
    # every candidate is drawn: with the boundary after shot 3, the centre's group is 4..16 without 8
    assert set(own[boundary == 3].tolist()) == set(range(4, 17)) - {8}
    assert set(other[boundary == 3].tolist()) == {0, 1, 2, 3}


def test_windows_shift_inside_the_movie_like_the_reference_sampler():
    assert window_shots(0, 100, 8, 1).tolist() == list(range(17))
    assert window_shots(50, 100, 8, 1).tolist() == list(range(42, 59))
    assert window_shots(99, 100, 8, 1).tolist() == list(range(83, 100))
    assert window_shots(50, 100, 2, 3).tolist() == [44, 47, 50, 53, 56]
    generator = torch.Generator().manual_seed(0)
    masks = torch.stack([mask_shots(17, 0.15, generator) for _ in range(400)])
    assert (masks.sum(1) >= 1).all() and 0.12 < masks.mean() < 0.2


def test_masked_shots_enter_the_crn_as_the_mask_embedding():
    torch.manual_seed(3)
    crn = ContextualRelationNetwork(TINY_CRN).eval()
    shots = torch.randn(2, 9, 512)
    mask = torch.zeros(2, 9)
    mask[:, 4] = 1
    changed = shots.clone()
    changed[:, 4] = 100.0  # what sits under a mask does not matter
    assert torch.allclose(crn(shots, mask)[0], crn(changed, mask)[0], atol=1e-5)
    assert not torch.allclose(crn(shots)[0], crn(changed)[0], atol=1e-3)
    assert crn(shots)[1].shape == (2, 32)


def test_objective_keys_are_the_released_checkpoints_and_every_task_gets_a_gradient():
    torch.manual_seed(4)
    model = build_bassl("resnet18", TINY_CRN, head_hidden=64, head_dim=16)
    keys = set(model.state_dict())
    for name in (
        "shot_encoder.conv1.weight",
        "shot_encoder.layer4.1.bn2.running_var",
        "crn.shot_embedding.mask_embedding.weight",
        "crn.shot_embedding.pos_ids",
        "crn.encoder.layer.1.attention.self.query.weight",
        "crn.encoder.layer.0.output.LayerNorm.bias",
        "loss.head_nce.model.2.weight",
        "loss.head_msm.predictions.decoder.weight",
        "loss.head_msm.predictions.bias",
        "loss.head_pp.weight",
        "loss.head_cgm.weight",
    ):
        assert name in keys, name
    assert not any(k.startswith("shot_encoder.fc") for k in keys)
    video, mask = torch.randn(4, 11, 3, 32, 32), torch.zeros(4, 9)
    mask[:, 2] = 1
    output = model(video, mask)
    assert set(output.terms) == {"ssm", "cgm", "pp", "msm"}
    assert torch.allclose(output.loss, sum(output.terms.values()))
    output.loss.backward()
    for head in ("head_nce", "head_msm", "head_pp", "head_cgm"):
        assert all(p.grad is not None for p in getattr(model.loss, head).parameters()), head
    assert model.shot_encoder.conv1.weight.grad.abs().sum() > 0


def test_shot_encoder_averages_the_keyframes_of_a_stacked_view():
    torch.manual_seed(5)
    encoder = BasslShotEncoder("resnet18").eval()
    frames = torch.randn(2, 3, 3, 32, 32)
    mean = torch.stack([encoder.features(frames[:, k]) for k in range(3)]).mean(0)
    assert torch.allclose(encoder.features(frames.flatten(1, 2)), mean, atol=1e-5)
    assert encoder.feature_dim == 512


def test_too_short_movies_are_one_line(runner, synth_root, tmp_path):
    from vseg.cli import app

    result = runner.invoke(
        app,
        ["pretrain", "bassl", "--config", "bassl/cpu_tiny", "--data", str(synth_root), "--out", str(tmp_path / "r"),
         "--set", "data.split=null", "--set", "data.neighbor_size=30"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "no movie has the 61 shots of one window" in result.output
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_bassl_learns_scene_features_on_synthetic_movies(runner, synth_root, tmp_path):
    """24 steps on 3 synthetic movies: the loss falls, and shots find their scene's shots among their nearest
    neighbours more often than with the encoder at initialisation."""
    from vseg.cli import app

    out = tmp_path / "run"
    args = ["pretrain", "bassl", "--config", "bassl/cpu_tiny", "--data", str(synth_root), "--out", str(out),
            "--epochs", "2", "--set", "data.split=null", "--set", "data.neighbor_size=2",
            "--set", "data.image_size=32", "--set", "train.batch_size=8", "--set", "train.steps_per_epoch=12",
            "--set", "train.workers=0", "--set", "train.log_every=4", "--set", "optim.warmup_epochs=0.2"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [row for row in rows if row["event"] == "step"]
    assert steps[-1]["loss"] < steps[0]["loss"] - 0.3, steps
    assert steps[-1]["ssm"] < steps[0]["ssm"], steps
    movies = sorted(p.name for p in (synth_root / "240P").iterdir())
    torch.manual_seed(0)
    random_init, encoder = BasslShotEncoder("resnet18"), BasslShotEncoder("resnet18")
    state = load_checkpoint(out / "checkpoints" / "last.pth")
    assert state["method"] == "bassl"
    encoder.load_state_dict(strip_prefix(state["state_dict"], "module.shot_encoder."))
    at_init, trained = scene_probe([random_init, encoder], synth_root, movies, image_size=32)
    assert trained > at_init + 0.03, (at_init, trained)


def test_warmup_cosine_is_pl_bolts_linear_warmup_decay():
    """BaSSL's LambdaLR(linear_warmup_decay(warmup, total, cosine=True)): linear from 0 to lr0 over the warm-up,
    then a full cosine to 0 over the remaining steps."""
    from vseg.config import OptimConfig
    from vseg.train.schedule import lr_at

    optim = OptimConfig(optimizer="lars", schedule="warmup_cosine", warmup_epochs=1.0)
    steps, epochs = 100, 10
    total, warmup = steps * epochs, steps

    def bolts(step: int) -> float:
        if step < warmup:
            return step / warmup
        progress = (step - warmup) / (total - warmup)
        return 0.5 * (1 + np.cos(np.pi * progress))

    for step in (0, 1, 50, 99, 100, 101, 550, 999):
        lr = lr_at(optim, 0.3, step // steps, step % steps, steps, epochs)
        assert lr == pytest.approx(0.3 * bolts(step), abs=1e-9)


def test_device_pipeline_makes_the_windows_of_the_per_window_path(synth_root):
    """Workers ship JPEG bytes and the drawn parameters; decoded and augmented as a batch, the windows are the
    per-window path's up to resampling and rounding (as SCRL's device pipeline is)."""
    from pathlib import Path

    from vseg.config import load_config
    from vseg.presets import preset
    from vseg.train.methods.bassl import (
        BasslConfig,
        EncodedShotWindows,
        ShotWindows,
        collate_windows,
        find_movies,
        window_views,
    )

    config = load_config(BasslConfig, preset("bassl/cpu_tiny"), ["data.split=null", "data.image_size=32"])
    movies = find_movies(Path(synth_root), config.data)
    per_window, encoded = ShotWindows(movies, config.data, seed=3), EncodedShotWindows(movies, config.data, seed=3)
    keys = [(1, 5), (1, 77)]
    batch = collate_windows([encoded[key] for key in keys])
    assert len(batch.files) == 18 and all(f.dtype == torch.uint8 and f.ndim == 1 for f in batch.files)
    video = window_views(batch, config.data.view(), torch.device("cpu"))
    for i, key in enumerate(keys):
        expected_video, expected_mask = per_window[key]
        assert video[i].shape == expected_video.shape == (11, 3, 32, 32)
        assert torch.equal(batch.mask[i], expected_mask)
        difference = (video[i] - expected_video).abs()
        assert difference.mean() < 5e-3 and difference.max() < 0.1, (difference.mean(), difference.max())


def test_only_the_heads_of_the_chosen_tasks_are_built_and_summed():
    torch.manual_seed(6)
    model = build_bassl("resnet18", TINY_CRN, head_hidden=64, head_dim=16, tasks=("ssm", "pp"))
    assert not hasattr(model.loss, "head_msm") and not hasattr(model.loss, "head_cgm")
    output = model(torch.randn(4, 11, 3, 32, 32), torch.ones(4, 9))
    assert set(output.terms) == {"ssm", "pp"} and torch.allclose(output.loss, output.terms["ssm"] + output.terms["pp"])
