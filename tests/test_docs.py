"""The documentation site (``docs/``, MkDocs Material): it builds with ``--strict`` (no broken link, no missing
page), every ``vseg`` command has its options table (generated from the same command objects as ``--help``) and
every option appears on its page, the code blocks marked ``# runnable`` run, and README's links resolve."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _hooks():
    spec = importlib.util.spec_from_file_location("vseg_docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pages() -> dict[Path, str]:
    return {path: path.read_text(encoding="utf-8") for path in sorted(DOCS.rglob("*.md"))}


def test_every_command_and_option_is_on_a_page():
    hooks = _hooks()
    pages = _pages()
    for command in hooks.leaf_commands():
        marker = f"<!-- options: {command} -->"
        holding = [path for path, text in pages.items() if marker in text]
        assert holding, f"no page of docs/ holds the options of {command} ({marker})"
        page = hooks.expand(pages[holding[0]])
        params = hooks.vseg_command(command).params
        for flag in (flag for param in params for flag in param.opts if flag.startswith("-")):
            assert f"`{flag}`" in page, f"{command} {flag} is not on {holding[0].relative_to(ROOT)}"


def test_an_options_table_shows_what_help_shows():
    table = _hooks().options_table("vseg scenes")
    row = next(line for line in table.splitlines() if line.startswith("| `--method`"))
    assert "[window&#124;osg]" in row and "| osg |" in row and "Training-free boundary method" in row
    jobs = next(line for line in table.splitlines() if line.startswith("| `--jobs` / `-j`"))
    assert "one per CPU core" in jobs


def _runnable_blocks() -> list[tuple[Path, str]]:
    blocks = []
    for path in [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]:
        for block in re.findall(r"```bash\n(.*?)```", path.read_text(encoding="utf-8"), re.S):
            if block.startswith("# runnable\n"):
                blocks.append((path, block))
    return blocks


def test_runnable_code_blocks_run(tmp_path):
    blocks = _runnable_blocks()
    assert len(blocks) >= 2
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for path, block in blocks:
        done = subprocess.run(["bash", "-e", "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{path.relative_to(ROOT)}:\n{block}\n{done.stderr[-2000:]}"


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = [link for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text) if "://" not in link]
    assert links, "README links into the docs"
    for link in links:
        assert (ROOT / link).exists(), link


def test_the_site_builds_strictly(tmp_path):
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    if mkdocs is None or importlib.util.find_spec("mkdocstrings") is None:
        pytest.skip("MkDocs is not installed (pip install 'vseg[docs]')")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([mkdocs, "build", "--strict", "-d", str(tmp_path / "site")], cwd=ROOT, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    page = (tmp_path / "site" / "commands" / "scenes" / "index.html").read_text()
    assert "--engine" in page and "[local|ray]" in page.replace("&#124;", "|")
    assert "detect_scenes" in (tmp_path / "site" / "api" / "index.html").read_text()
