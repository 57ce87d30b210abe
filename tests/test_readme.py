"""The README's commands work as written.

Every ``zendeploy`` line of the README's ``bash`` blocks runs here, in a scratch folder holding a copy of the
shipped tables, a small search run at ``runs/demo/search`` (what ``make demo`` leaves), a few representative images
and a weights file, with small settings swapped in for the expensive ones (iterations, repeats, samples, the
profile's plan). Lines that are fragments (``...``), need a cluster, or another machine (a phone, a T4 box) are
reported as skipped with the reason. Every ``$ command`` example with its output is run too, and its output must be
the README's, line for line (an elided ``  ...`` line stands for any number of lines): a figure in the README that the
shipped tables no longer give fails here.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zendeploy.cli.app import app

pytest.importorskip("onnxruntime", reason="needs the [onnx] extra")

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

# option -> the small value it takes here (the README's value is what a user runs; these keep the suite short)
SMALL = {"--iterations": "6", "--population": "4", "--repeats": "1", "--samples": "3", "--passes": "1"}
PROFILE_SMALL = ["--grid-networks", "1", "--calibration-networks", "4", "--passes", "1"]
NEEDS = [("--farm", "a device farm (Ray nodes with a T4 or a phone each)"),
         ("--ray", "a Ray cluster (tests/test_distributed_*.py run these paths on a local instance)"),
         ("--device t4", "a T4 with TensorRT"), ("--device pixel", "a phone over adb"),
         ("search-measured", "timings from a device runner (tests/test_latency_coverage.py covers it)"),
         ("mypkg.", "a user's own package (tests/test_proxies_module.py runs --module on tests/fixtures)"),
         ("./my_model.py", "a user's own file (tests/test_proxies_module.py runs --module on tests/fixtures)"),
         ("--module resnet18", "torchvision (not installable against this torch here)")]


def _blocks(lang: str | None) -> list[str]:
    return [body for tag, body in re.findall(r"```(\w*)\n(.*?)```", README, re.S) if lang is None or tag == lang]


# lines that take minutes even with small settings: run with pytest --slow
SLOW = [("--device tflite-cpu", "converting ~100 units with litert-torch"),
        ("--precision int8", "an int8 TFLite conversion of a 400M-MAC net at 224 with calibration")]


def _commands() -> list:
    lines = []
    for body in _blocks("bash"):
        joined = re.sub(r"\\\n\s*", " ", body)
        for line in joined.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()  # comments after the command
            if line.startswith("zendeploy "):
                slow = any(needle in line for needle, _ in SLOW)
                lines.append(pytest.param(line, marks=pytest.mark.slow) if slow else line)
    return lines


def _examples() -> list[tuple[str, list[str]]]:
    """``$ command`` lines of the plain blocks, each with the output lines shown under it."""
    out = []
    for body in _blocks(""):
        for chunk in re.split(r"^\$ ", body, flags=re.M)[1:]:
            command, *shown = chunk.rstrip("\n").split("\n")
            out.append((command, shown))
    return out


def _skip_reason(line: str) -> str | None:
    if "..." in line:
        return "a fragment of the command above it (README shows the option only)"
    for needle, what in NEEDS:
        if needle in line:
            return f"needs {what}"
    return None


def _small(args: list[str], scratch: Path) -> list[str]:
    out = list(args)
    for i, a in enumerate(out[:-1]):
        if a in SMALL:
            out[i + 1] = SMALL[a]
    if out[0] == "profile":
        if "-o" not in out and "--output" not in out:  # keep the shipped tables for the commands after it
            out += ["-o", str(scratch / "profiled" / f"{len(list(scratch.glob('profiled/*.json')))}.json")]
        out = [a for a in out if a not in PROFILE_SMALL] + PROFILE_SMALL
        if "--max-macs" not in out:
            out += ["--max-macs", "40M"]
    return out


def _shown_pattern(shown: list[str]) -> str:
    """The README's output as a regular expression: its lines literally, an elided ``  ...`` line as any lines."""
    parts, current = [], []
    for line in shown:
        if line.strip() == "...":
            parts.append(current)
            current = []
        else:
            current.append(re.escape(line))
    parts.append(current)
    return r"(?:\n.*)*?\n".join("\n".join(p) for p in parts)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A folder laid out as the README's commands expect, made once for the module."""
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "latency_tables", root / "latency_tables",
                    ignore=shutil.ignore_patterns("*.validate", "*.measured.jsonl", "*.png"))
    old = os.getcwd()
    os.chdir(root)
    try:
        runner = CliRunner()
        res = runner.invoke(app, ["search", "--space", "resnet", "--res", "32", "--params", "150K", "--max-layers",
                                  "10", "--population", "4", "--iterations", "4", "--batch-size", "4", "-o",
                                  "runs/demo/search"])
        assert res.exit_code == 0, res.output
        images = root / "images"
        images.mkdir()
        import numpy as np
        from PIL import Image

        rng = np.random.default_rng(0)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(images / f"{i}.png")
        import torch
        from safetensors.torch import save_file

        from zendeploy.builder import build_model

        structure = "SuperConvK3BNRELU(3,8,2,1)SuperResK3K3(8,16,2,8,1)SuperConvK1BNRELU(16,64,1,1)"
        model = build_model(structure, num_classes=10)
        save_file({k: v.contiguous() for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)},
                  root / "model.safetensors")
        yield root
    finally:
        os.chdir(old)


@pytest.mark.parametrize("line", _commands())
def test_readme_command_runs(line, scratch):
    reason = _skip_reason(line)
    if reason:
        pytest.skip(reason)
    args = _small(shlex.split(line)[1:], scratch)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, f"{line}\n  ran as: zendeploy {' '.join(args)}\n{res.output}"
    assert "Traceback" not in res.output


@pytest.mark.parametrize("command,shown", _examples(), ids=lambda v: v if isinstance(v, str) else "")
def test_readme_example_output_is_what_the_command_prints(command, shown, scratch):
    args = shlex.split(command)[1:]
    res = CliRunner(env={"COLUMNS": "200"}).invoke(app, args)
    printed = res.output.strip("\n").split("\n")
    assert re.fullmatch(_shown_pattern(shown), "\n".join(printed)), (
        "README shows:\n" + "\n".join(shown) + "\n\nthe command prints:\n" + "\n".join(printed))
