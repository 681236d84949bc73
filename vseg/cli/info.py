"""``vseg info``: versions, devices and presets, for a bug report."""

from __future__ import annotations

import json

import typer

from vseg import ui
from vseg.cli.options import App

app = App()


@app.command("info")
def info(json_output: bool = typer.Option(False, "--json", help="Print one JSON object (for machines).")) -> None:
    """Print what a bug report needs: vseg, Python, torch and CUDA (devices, NCCL), torchvision, decord, PyAV and its
    FFmpeg, the ffmpeg binary, PySceneDetect, OpenTimelineIO and its adapters, Ray, the presets and the CPU cores."""
    from vseg.info import collect_info

    found = collect_info()
    if json_output:
        ui.stdout.print_json(json.dumps(found))
        return
    rows = []
    for key, value in found.items():
        if isinstance(value, dict):
            rows += [(f"{key} {name}".replace("_", " "), _text(item)) for name, item in value.items()]
        else:
            rows.append((key.replace("_", " "), _text(value)))
    ui.summary("vseg info", rows, justify="left")


def _text(value) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{name} {item}" for name, item in value.items())
    return str(value)
