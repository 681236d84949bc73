"""What a newcomer meets first: help that reads cleanly at 80 and 120 columns, progress that fits the terminal (and
plain lines in a log), ``vseg info``, and the papercuts (a batch size that fits, too few scenes, the poster)."""

from __future__ import annotations

import io
import json
import re
import time

import pytest
from rich.console import Console

from vseg import ui
from vseg.cli import app
from vseg.cli.options import paragraphs

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _help(runner, width: int, *command: str) -> str:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": str(width), "TERMINAL_WIDTH": str(width)})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("width", [80, 120])
def test_the_command_list_wraps_each_summary_as_a_paragraph(runner, width):
    text = _help(runner, width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "<bool>" not in text and "<str>" not in text
    # each command's summary reads as one paragraph: its cells, joined, are its docstring's first paragraph
    cells: dict[str, list[str]] = {}
    name = None
    for line in text.splitlines():
        match = re.match(r"│ (\w+)?\s+(.*?)\s*│$", line)
        if match and match[1] in ("adapt", "finetune", "scenes", "embed", "demo", "info"):
            name = match[1]
            cells[name] = [match[2]]
        elif match and name and not match[1] and match[2]:
            cells[name].append(match[2])
        elif not match:
            name = None
    from vseg.cli.adapt import HELP

    assert " ".join(cells["adapt"]) == paragraphs(HELP)
    for summary in cells.values():
        words = " ".join(summary)
        assert "  " not in words and words.endswith(".")


@pytest.mark.parametrize("width", [80, 120])
def test_options_show_choices_and_flags_no_type(runner, width):
    text = _help(runner, width, "scenes")
    assert max(len(line) for line in text.splitlines()) <= width
    flat = re.sub(r"\s*│\s*", " ", text)
    for choices in ("[window|osg]", "[auto|cuda|cpu]", "[local|ray]"):
        assert choices in flat.replace(" ", "") or choices in flat, choices
    assert "<bool>" not in text and "--force  " in text.replace("│", " ") or "--force " in text
    assert "<bool>" not in _help(runner, width)


def _progress_lines(width: int, terminal: bool) -> list[str]:
    buffer = io.StringIO()
    saved, ui.stderr = ui.stderr, Console(file=buffer, width=width, force_terminal=terminal, color_system=None)
    try:
        with ui.progress("epoch 1/4", total=1280, unit="clips") as advance:
            time.sleep(0.2)
            advance(640, status="loss 0.6931 lr 0.03")
    finally:
        ui.stderr = saved
    text = ANSI.sub("", buffer.getvalue()).replace("\r", "\n")
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("width", [80, 120])
def test_the_progress_line_fits_the_terminal(width):
    last = _progress_lines(width, terminal=True)[-1]
    assert len(last) <= width and "…" not in last
    assert last.startswith("epoch 1/4") and "640/1280" in last and "clips/s" in last and "loss 0.6931" in last
    assert ("0:00:00 ETA" in last) == (width >= ui.WIDE)  # the elapsed time only where there is room


def test_a_log_gets_plain_progress_lines(monkeypatch):
    monkeypatch.setattr(ui.settings, "log_seconds", 0.0)
    lines = _progress_lines(200, terminal=False)
    assert lines[0].startswith("epoch 1/4: 640/1,280 clips, ") and "clips/s, ETA 0:00:0" in lines[0]
    assert lines[0].endswith("loss 0.6931 lr 0.03") and len(lines) == 1  # the end adds no copy of the last line


def test_info_json_names_what_a_bug_report_needs(runner):
    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    for key in ("vseg", "python", "cpu_cores", "torch", "torchvision", "decord", "pyav", "ffmpeg", "scenedetect",
                "opentimelineio", "ray", "presets"):  # fmt: skip
        assert key in found, key
    assert {"version", "cuda_available", "devices", "nccl_available"} <= set(found["torch"])
    assert "libavcodec" in found["pyav"]["ffmpeg_libraries"] and found["ffmpeg"]["version"].startswith("ffmpeg")
    assert {"cmx_3600", "fcp_xml", "otio_json"} <= set(found["opentimelineio"]["adapters"])
    assert "scenes/default" in found["presets"] and found["cpu_cores"] >= 1
    table = runner.invoke(app, ["info"])
    assert table.exit_code == 0 and "torch version" in table.output


def test_too_small_a_batch_names_one_that_fits():
    import torch

    from vseg.config import TrainConfig
    from vseg.errors import ConfigError
    from vseg.runtime import DistEnv
    from vseg.train.trainer import build_loader

    env = DistEnv(0, 1, 0, torch.device("cpu"))
    with pytest.raises(ConfigError, match="set train.batch_size to 6 or less, a multiple of 3, or add data"):
        build_loader(list(range(2)), TrainConfig(batch_size=48), env, samples_per_rank=16, items_per_sample=3)
    with pytest.raises(ConfigError, match="ranks; add data"):
        build_loader([], TrainConfig(batch_size=3), env, samples_per_rank=1, items_per_sample=3)
