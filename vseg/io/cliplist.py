"""Clip lists, read and written here only: HiCo's cut clips and ``training.txt`` (HiCo's
``datasets/base/long_video.py``), and the ``relative/path label`` lists of UCF101 / HMDB51 / Kinetics.

A long video ``<id>`` is cut into clips named ``v_<id>_<startms>_<endms>.mp4`` (milliseconds zero-padded to 7
digits; more digits past 9,999,999 ms): clip ``k`` covers ``[k*L, (k+1)*L)`` for the clip length ``L`` (5 s in
HiCo), and the last clip ends at the video's duration. ``training.txt`` has one line ``<id>,<startms>,<endms>``
per clip (the id without ``v_``), each video's lines together and in time order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vseg.errors import DataError

CLIP_PREFIX = "v_"
CLIP_SUFFIX = ".mp4"
_CLIP_NAME_RE = re.compile(r"^v_(?P<id>.+)_(?P<start>\d{7,})_(?P<end>\d{7,})\.mp4$")
_MS_RE = re.compile(r"^\d{7,}$")


def video_id_problem(video_id: str) -> str | None:
    """Why ``video_id`` cannot name clips (None when it can): it must be a plain, non-empty file-name part
    with no path separator, no ``..``, no comma (training.txt is comma-separated) and no control character."""
    if not video_id:
        return "the video id is empty"
    if "/" in video_id or "\\" in video_id:
        return f"the video id {video_id!r} contains a path separator"
    if ".." in video_id:
        return f"the video id {video_id!r} contains '..'"
    if "," in video_id:
        return f"the video id {video_id!r} contains a comma, which training.txt cannot hold"
    if any(ord(c) < 32 or ord(c) == 127 for c in video_id):
        return f"the video id {video_id!r} contains a control character"
    if video_id != video_id.strip():
        return f"the video id {video_id!r} starts or ends with white space"
    return None


def clip_file_name(video_id: str, start_ms: int, end_ms: int) -> str:
    """``v_<id>_<start:07d>_<end:07d>.mp4``; ValueError for an id that cannot name a file or a bad range."""
    problem = video_id_problem(video_id)
    if problem:
        raise ValueError(problem)
    if not 0 <= start_ms < end_ms:
        raise ValueError(f"expected 0 <= start_ms < end_ms, got {start_ms}, {end_ms}")
    return f"{CLIP_PREFIX}{video_id}_{start_ms:07d}_{end_ms:07d}{CLIP_SUFFIX}"


def parse_clip_file_name(name: str) -> tuple[str, int, int]:
    """``"v_abc_0005000_0010000.mp4"`` -> ``("abc", 5000, 10000)``; ValueError if ``name`` is not a clip name.

    The id is everything between ``v_`` and the two times, so it may itself hold underscores."""
    match = _CLIP_NAME_RE.match(name)
    if not match or int(match["start"]) >= int(match["end"]) or video_id_problem(match["id"]):
        raise ValueError(f"not a clip file name (v_<id>_<startms>_<endms>.mp4): {name!r}")
    return match["id"], int(match["start"]), int(match["end"])


@dataclass
class UntrimmedVideo:
    """One long video as its clips: ``pieces`` are ``(start_ms, end_ms)`` in time order."""

    id: str
    pieces: list[tuple[int, int]] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """Seconds, from the end of the last piece (as HiCo's loader takes it)."""
        return self.pieces[-1][1] / 1000 if self.pieces else 0.0

    def clip_names(self) -> list[str]:
        """The file name of each piece, in time order."""
        return [clip_file_name(self.id, start, end) for start, end in self.pieces]


def format_training_list(videos: Iterable[UntrimmedVideo]) -> str:
    """``training.txt``: one ``<id>,<startms>,<endms>`` line per piece, video after video."""
    return "".join(f"{v.id},{start:07d},{end:07d}\n" for v in videos for start, end in v.pieces)


def _read_list(path: Path, what: str) -> str:
    """A list file's text; DataError naming it when it is missing or unreadable."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(path, f"{what} missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read {what} ({exc})") from None


def read_training_list(path: str | Path, clip_ms: int | None = None) -> list[UntrimmedVideo]:
    """Read and validate a ``training.txt``; DataError naming the file and line on the first violation.

    Checked: three comma-separated fields; a valid id; start and end as non-negative integers of at least 7
    digits with start < end; each video's lines together; its pieces contiguous from 0; every piece starting on
    a multiple of the clip length and every piece but the last exactly one clip length long. The clip length is
    ``clip_ms`` when given, else the length of the first piece of the first video with more than one piece.
    Blank lines are ignored.
    """
    path = Path(path)
    text = _read_list(path, "clip list")
    videos: list[UntrimmedVideo] = []
    first_line: dict[str, int] = {}
    lines: dict[str, list[int]] = {}  # line number of each piece, for the messages of the length checks
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue

        def bad(reason: str, number: int = number) -> DataError:
            return DataError(path, f"line {number}: {reason}")

        fields = line.split(",")
        if len(fields) != 3:
            raise bad(f"expected <id>,<startms>,<endms>, got {line!r}")
        video_id, start_text, end_text = fields
        problem = video_id_problem(video_id)
        if problem:
            raise bad(problem)
        if not (_MS_RE.match(start_text) and _MS_RE.match(end_text)):
            raise bad(f"start and end must be milliseconds as 7-digit integers such as 0005000, got {line!r}")
        start, end = int(start_text), int(end_text)
        if start >= end:
            raise bad(f"the piece ends ({end} ms) before it starts ({start} ms)")
        if not videos or videos[-1].id != video_id:
            if video_id in first_line:
                raise bad(f"the lines of video {video_id!r} are not together (it also appears at line "
                          f"{first_line[video_id]})")  # fmt: skip
            first_line[video_id] = number
            videos.append(UntrimmedVideo(video_id))
            lines[video_id] = []
        video = videos[-1]
        expected = video.pieces[-1][1] if video.pieces else 0
        if start != expected:
            what = "the video's first piece must start at 0000000" if not video.pieces else "pieces must be contiguous"
            raise bad(f"{what}: expected start {expected:07d}, got {start_text}")
        video.pieces.append((start, end))
        lines[video_id].append(number)
    length = clip_ms if clip_ms is not None else next((v.pieces[0][1] for v in videos if len(v.pieces) > 1), None)
    if length is not None:
        for video in videos:
            for k, ((start, end), number) in enumerate(zip(video.pieces, lines[video.id], strict=True)):
                last = k == len(video.pieces) - 1
                if start != k * length or (not last and end != start + length):
                    raise DataError(
                        path,
                        f"line {number}: pieces must be {length} ms long and start on multiples of {length} ms "
                        f"(the last may be shorter), got {start:07d}-{end:07d}",
                    )
    return videos


def read_labelled_lines(path: str | Path, root: str | Path | None = None) -> list[tuple[int, Path, int]]:
    """Read a ``relative/path label`` list (UCF101, HMDB51, Kinetics lists as HiCo uses them; space-separated):
    ``(line number, video path, label)`` per video.

    Paths are relative to ``root`` when given, else to the list's folder (an absolute path stays as it is); the
    label is the last field, so a path may hold spaces. Blank lines are ignored. DataError naming the file and
    line for a line without an integer label. The video files themselves are not opened.
    """
    path = Path(path)
    base = Path(root) if root is not None else path.parent
    text = _read_list(path, "list")
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.strip().rsplit(maxsplit=1)
        if len(fields) != 2 or not re.fullmatch(r"-?\d+", fields[1]):
            raise DataError(path, f"line {number}: expected 'relative/path label' with an integer label, got {line!r}")
        items.append((number, base / fields[0].strip(), int(fields[1])))
    return items


def read_labelled_list(path: str | Path, root: str | Path | None = None) -> list[tuple[Path, int]]:
    """``(video path, label)`` per video of a ``relative/path label`` list (see :func:`read_labelled_lines`)."""
    return [(video, label) for _, video, label in read_labelled_lines(path, root)]
