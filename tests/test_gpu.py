"""The CUDA-only paths, marked ``gpu``: skipped without CUDA, run by ``benchmarks/gpu_check.py --sections gpu_tests``
(README's status column says which claims rest on it). The same comparisons as ``test_device_pipeline.py`` on the
CPU, with nvJPEG decoding and the views made on the GPU."""

from __future__ import annotations

import pytest
import torch

from vseg.data.clips import TwoViewClips, puzzle_clips
from vseg.data.encoded_clips import EncodedClips, TwoViewDecoder, collate_encoded

from .test_device_pipeline import AFTER_JITTER, ONE_GREY_LEVEL, TRANSFORM, grey_levels

pytestmark = pytest.mark.gpu


def test_nvjpeg_decoded_views_are_the_cpu_pipelines_up_to_rounding(puzzle_root):
    """README: the device pipeline's pixels differ from the per-item path's by about one grey level, and nvJPEG's
    IDCT may differ from libjpeg's by as much: two at most before the colour operations."""
    clips = puzzle_clips(puzzle_root, 16, 3)
    expected = TwoViewClips(clips, TRANSFORM, seed=5)[(2, 3)]
    batch = collate_encoded([EncodedClips(clips, TRANSFORM, seed=5)[(2, 3)]])
    got = TwoViewDecoder(TRANSFORM)(batch, torch.device("cuda"))
    for view, reference, bound in zip(got, expected, (2 * ONE_GREY_LEVEL, 2 * AFTER_JITTER), strict=True):
        assert view.is_cuda and view.shape == reference.shape == (16, 9, 32, 32)
        difference = (view.cpu() - reference).abs()
        assert difference.mean() < 5e-3 and grey_levels(difference) <= bound, grey_levels(difference)


def test_embed_on_the_gpu_gives_the_cpu_features(synth_root, tmp_path):
    from vseg.config import EmbedConfig
    from vseg.eval.embed import run_embed
    from vseg.io.checkpoints import FORMAT
    from vseg.io.embeddings import read_embeddings
    from vseg.models.encoder import ShotEncoder

    torch.manual_seed(0)
    state = {f"module.encoder_q.{k}": v for k, v in ShotEncoder("resnet18", 9, 32).state_dict().items()}
    torch.save({"format": FORMAT, "state_dict": state}, tmp_path / "ours.pth")
    features = {}
    for device, pipeline in (("cpu", "cpu"), ("cuda", "device")):
        config = EmbedConfig(image_size=64, workers=0, batch_size=16, split="test", pipeline=pipeline, device=device)
        run_embed(tmp_path / "ours.pth", synth_root, tmp_path / device, config)
        features[device] = torch.from_numpy(read_embeddings(tmp_path / device / "test.npz").features)
    cosine = torch.nn.functional.cosine_similarity(features["cpu"], features["cuda"], dim=1)
    assert cosine.min() > 0.999, cosine.min()  # fp32 on both; TF32 convolutions and nvJPEG account for the rest
