"""report.html in a real browser (headless Chromium through selenium): it fits a 1280 px window, clicking a scene
seeks the player to the scene's start and shows its first frame, the playing scene is highlighted, and thumbnails
load as they scroll into view. Skipped, saying why, where Chromium, chromedriver or selenium is missing."""

from __future__ import annotations

import json
import shutil
import time
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from vseg.cli import app
from vseg.io.predictions import scenes_from_probabilities
from vseg.io.scene_report import write_report

from .synthetic_video import CODE_BITS, cut_frames, write_timed_video

CUTS = [20, 41, 63, 85]
FRAMES = 105


def _browser_paths() -> tuple[str, str]:
    pytest.importorskip("selenium", reason="selenium is not installed (pip install 'vseg[dev]')")
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("no Chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    return browser, driver


@pytest.fixture(scope="module")
def browser():
    binary, driver_path = _browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--autoplay-policy=no-user-gesture-required",
        "--allow-file-access-from-files",
    ):  # fmt: skip  (file:// video pixels may be read back)
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    yield driver
    driver.quit()


def _wait(condition, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("the page did not get there in time")


def _no_sideways_scroll(driver) -> None:
    widths = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth, window.innerWidth]"
    )
    assert widths[2] == 1280 and widths[0] <= widths[1], widths


def _shown_code(driver) -> int:
    """The frame index that the player shows (drawn onto a canvas, read from the code band of cut_frames)."""
    row = driver.execute_script("""
        const video = document.getElementById("player"), canvas = document.createElement("canvas");
        canvas.width = video.videoWidth; canvas.height = video.videoHeight;
        const context = canvas.getContext("2d");
        context.drawImage(video, 0, 0);
        const y = canvas.height - Math.floor(canvas.height / 12);
        return Array.from(context.getImageData(0, y, canvas.width, 1).data);""")
    red = np.asarray(row).reshape(-1, 4)[:, 0]
    stripe = len(red) / CODE_BITS
    return sum(int(red[int((bit + 0.5) * stripe)] > 127) << bit for bit in range(CODE_BITS))


def test_clicking_a_scene_plays_it_from_its_first_frame(runner, browser, tmp_path):
    gaps = np.random.default_rng(2).choice([40, 80], size=FRAMES - 1)
    pts = [1500, *(1500 + np.cumsum(gaps)).tolist()]  # variable frame rate, first frame at 1.5 s
    video = write_timed_video(tmp_path / "film.mp4", list(cut_frames(FRAMES, CUTS)), pts, Fraction(1, 1000))
    out = tmp_path / "out"
    options = ["--method", "window", "--threshold", "0", "--min-scene-shots", "1"]  # every shot is a scene
    result = runner.invoke(app, ["scenes", str(video), "--out", str(out), *options])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "scenes.json").read_text())
    assert len(rows) == 5

    browser.get((out / "report.html").as_uri())
    _no_sideways_scroll(browser)
    _wait(lambda: browser.execute_script("return document.getElementById('player').readyState >= 2"))
    for scene in (3, 1):
        browser.find_element("id", f"scene-{scene}").click()
        _wait(lambda: not browser.execute_script("return document.getElementById('player').seeking"))
        time.sleep(0.2)  # the seeked frame reaches the screen
        shown = browser.execute_script("return document.getElementById('player').currentTime")
        assert abs(shown - rows[scene]["start_time"]) < 0.001 and shown >= rows[scene]["start_time"]
        assert _shown_code(browser) == rows[scene]["start_frame"]
        current = browser.find_elements("css selector", "tr.scene.current")
        assert [row.get_attribute("id") for row in current] == [f"scene-{scene}"]
    # playing on from scene 1 into scene 2 moves the highlight
    browser.execute_script("const v = document.getElementById('player'); v.muted = true; v.playbackRate = 4; v.play()")
    start_2 = rows[2]["start_time"]
    _wait(lambda: browser.execute_script("return document.getElementById('player').currentTime") > start_2 + 0.2)
    browser.execute_script("document.getElementById('player').pause()")
    assert browser.find_element("css selector", "tr.scene.current").get_attribute("id") in ("scene-2", "scene-3")


def test_a_long_report_fits_the_window_and_loads_thumbnails_as_they_scroll_in(browser, tmp_path):
    shots = 2000  # a two-hour film's shots, a scene every 8 of them
    keyframe = tmp_path / "kf.jpg"
    Image.new("RGB", (128, 72), (200, 80, 40)).save(keyframe)
    prob = np.zeros(shots)
    prob[7::8] = 0.9
    frames = np.stack([np.arange(shots) * 100, np.arange(shots) * 100 + 99], axis=1)
    scenes = scenes_from_probabilities("film", prob, 0.5, frames, 24.0)
    page = write_report(tmp_path / "report.html", scenes, [[keyframe] * 3] * shots, prob, "film", ["a note"])
    assert len(scenes) == 250
    browser.get(page.as_uri())
    _no_sideways_scroll(browser)
    loaded = "return Array.from(document.querySelectorAll('#scene-249 img')).map(img => img.complete && img.src)"
    assert not any(browser.execute_script(loaded))  # far below the window: not decoded yet
    browser.execute_script("document.getElementById('scene-249').scrollIntoView()")
    _wait(lambda: all(browser.execute_script(loaded)))
    _no_sideways_scroll(browser)


def test_a_collection_index_links_every_report_and_fits_the_window(runner, browser, tmp_path):
    videos = tmp_path / "a folder with a long name of many words" / "and a sub-folder of its own"
    videos.mkdir(parents=True)
    for index in range(2):
        write_timed_video(videos / f"clip {index}.mp4", list(cut_frames(40, [20], seed=index)), list(range(40)),
                          Fraction(1, 24))  # fmt: skip
    (videos / "broken.mp4").write_bytes(b"\x00" * 500)
    out = tmp_path / "out"
    result = runner.invoke(app, ["scenes", str(tmp_path), "--out", str(out), "--jobs", "1"])
    assert result.exit_code == 1, result.output
    browser.get((out / "index.html").as_uri())
    _no_sideways_scroll(browser)
    links = [a.get_attribute("href") for a in browser.find_elements("css selector", "#videos a")]
    assert len(links) == 2 and all(link.endswith("/report.html") for link in links)
    images = browser.find_elements("css selector", "#videos img")
    _wait(lambda: all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
                      for img in images))  # fmt: skip
    assert len(images) == 2
    failed = browser.find_element("css selector", "tr.failed").text
    assert "broken.mp4" in failed and "failed" in failed
    for link in links:  # every link resolves: the report opens, titled after its video
        browser.get(link)
        assert browser.find_element("tag name", "h1").text.startswith("Scenes of clip ")
        _no_sideways_scroll(browser)
