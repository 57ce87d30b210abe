"""Fuzzing the user-facing inputs (hypothesis): structure strings, latency-table files and CLI arguments. Every
input either works or fails with a ZenDeployError whose message is one line; the CLI exits 0 or 1 with no traceback.
The suite runs ``FUZZ_EXAMPLES`` cases per kind (default 200); ``tools/fuzz_inputs.py`` runs 10,000."""

from __future__ import annotations

import json
import math
import os

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from zendeploy.errors import ZenDeployError  # noqa: E402
from zendeploy.space.structure import parse_structure  # noqa: E402

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

NAMES = ["SuperConvK3BNRELU", "SuperConvK1BNRELU", "SuperResK1K3K1", "SuperResK3K3", "SuperResIDWE6K7",
         "SuperResK1K5K1", "SuperResK7K7", "SuperConvK9BNRELU", "Super", "superresk3k3", ""]
INTS = st.one_of(st.integers(-3, 70000), st.sampled_from([0, 1, 2, 3, 8, 16, 65536, 10 ** 12]))


@st.composite
def structure_text(draw):
    """Near-valid structure strings: real block names and arities with odd values, cut or garbled punctuation."""
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        args = draw(st.lists(INTS, min_size=0, max_size=6))
        body = ",".join(str(a) for a in args)
        opener, closer = draw(st.sampled_from([("(", ")"), ("(", ""), ("", ")"), ("[", "]"), ("(", "))")]))
        parts.append(f"{draw(st.sampled_from(NAMES))}{opener}{body}{closer}")
    text = "".join(parts)
    if draw(st.booleans()):
        text += draw(st.text(alphabet="(),0123456789 Kx\n", max_size=8))
    return text


def _one_line(exc: BaseException) -> None:
    message = str(exc)
    assert message and "\n" not in message.strip(), repr(message)


@FUZZ
@given(structure_text())
def test_structure_strings_parse_or_fail_in_one_line(text):
    try:
        blocks = parse_structure(text)
    except ZenDeployError as exc:
        _one_line(exc)
        return
    assert blocks  # a parsed structure is never empty


@pytest.fixture(scope="module")
def table_text(tmp_path_factory):
    from test_latency import _synthetic_entries, _table

    from zendeploy.latency.tables import save_table

    coef = {"const": 0.01, "act_in": 0.3, "act_out": 0.2, "macs_k3": 0.02, "macs_1x1": 0.01}
    path = save_table(_table(_synthetic_entries("bottleneck", 12, coef)), tmp_path_factory.mktemp("t") / "t.json")
    return path.read_text()


VALUES = st.one_of(st.just(math.nan), st.just(math.inf), st.just(-math.inf), st.just(-1.0), st.just(0), st.just(1e308),
                   st.just(None), st.just("x"), st.just([]), st.just({}), st.integers(-10, 10 ** 9),
                   st.floats(allow_nan=True, allow_infinity=True))


def _paths(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


@FUZZ
@given(data=st.data())
def test_corrupt_tables_are_refused_in_one_line(table_text, tmp_path_factory, data):
    """Any one field of a valid table replaced by a hostile value, or the file cut short: it loads (and then
    predicts a finite number) or is refused with one line naming the problem."""
    from zendeploy.latency.predict import LatencyPredictor
    from zendeploy.latency.tables import load_table

    doc = json.loads(table_text)
    paths = list(_paths(doc))
    path = data.draw(st.sampled_from(paths))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = data.draw(VALUES)
    text = json.dumps(doc)
    if data.draw(st.booleans()):
        text = text[: data.draw(st.integers(0, len(text)))]
    f = tmp_path_factory.mktemp("fz") / "t.json"
    f.write_text(text)
    try:
        table = load_table(f)
    except ZenDeployError as exc:
        _one_line(exc)
        return
    blocks = parse_structure("SuperConvK3BNRELU(3,8,1,1)SuperResK1K3K1(8,16,2,8,1)SuperConvK1BNRELU(16,32,1,1)")
    try:
        p = LatencyPredictor(table).predict(blocks, 32)
    except ZenDeployError as exc:
        _one_line(exc)
        return
    assert math.isfinite(p.latency_ms) and p.latency_ms > 0 and math.isfinite(p.sigma_ms)


@FUZZ
@given(text=structure_text(), res=st.one_of(st.none(), st.integers(-5, 100000)),
       classes=st.one_of(st.none(), st.integers(-5, 10 ** 13)))
def test_cli_info_is_one_line_or_works(text, res, classes):
    from typer.testing import CliRunner

    from zendeploy.cli.app import app

    args = ["info", text, "--json"] + (["--res", str(res)] if res is not None else []) + (
        ["--num-classes", str(classes)] if classes is not None else [])
    out = CliRunner().invoke(app, args)
    assert out.exit_code in (0, 1, 2), out.output  # 2: typer's own usage error (e.g. --res below its minimum)
    assert "Traceback" not in out.output
    if out.exit_code == 1:
        assert out.output.strip().startswith("error:") and len(out.output.strip().splitlines()) == 1, out.output
