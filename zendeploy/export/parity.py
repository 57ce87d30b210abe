"""Parity: the exported file's outputs against PyTorch's on the same seeded random inputs.

Error measures, for reference output ``a`` (PyTorch, float32) and runtime output ``b`` over all inputs:

- ``max_abs_err = max |a - b|``;
- ``max_rel_err = max |a - b| / max(max |a|, 1e-6)``: the worst error relative to the output's own scale (an
  L-infinity relative error). A per-element ratio ``|a - b| / |a|`` is not used: it explodes wherever an output
  crosses zero (every post-ReLU zero, every logit near 0), so it fails correct exports at random. The floor only
  matters for an all-zero output, where the measure falls back to the absolute error over 1e-6.

Tolerances (``TOLERANCES``): fp32 1e-4 relative (the issue's bar); fp16-weight files 1e-2. int8 files are not held
to a tolerance: their record is a *drift* report (same measures plus top-1 agreement for classifier outputs), since
quantisation error is expected and what matters is how far it moves the fp32 model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

from ..errors import ExportError, first_line
from ..convert.common import from_layout, to_layout

TOLERANCES: dict[str, float | None] = {"fp32": 1e-4, "fp16": 1e-2, "int8": None}
SCALE_FLOOR = 1e-6
DEFAULT_INPUTS = 2
DEFAULT_SEED = 0


@dataclass
class ParityRecord:
    """Result of one parity (or drift) check. ``passed`` is None for a drift report (no tolerance)."""

    runtime: str
    kind: str  # "parity" (held to a tolerance) or "drift" (quantised: reported only)
    n_inputs: int
    seed: int
    max_abs_err: float
    max_rel_err: float
    ref_max_abs: float
    tolerance: float | None
    passed: bool | None
    top1_agreement: float | None = None  # share of inputs whose argmax matches (classifier outputs only)
    output_shape: list[int] = field(default_factory=list)
    inputs: str = "random"  # what was fed: "random" (seeded standard normal) or "representative"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def message(self) -> str:
        what = f"max abs err {self.max_abs_err:.3g}, max rel err {self.max_rel_err:.3g}"
        if self.kind == "drift":
            agree = "" if self.top1_agreement is None else f", top-1 agreement {self.top1_agreement:.0%}"
            return f"{self.runtime} drift vs fp32 PyTorch: {what}{agree}"
        verdict = "within" if self.passed else "exceeds"
        return f"{self.runtime} vs PyTorch: {what} ({verdict} tolerance {self.tolerance:g} relative)"

    def raise_for_failure(self, what: str = "export") -> None:
        """Raise ExportError when the check failed (never for a drift report)."""
        if self.passed is False:
            raise ExportError(f"{what} failed its parity check: {self.message}")


def error_measures(reference, output) -> tuple[float, float, float]:
    """(max_abs_err, max_rel_err, ref_max_abs) of two arrays (see module docstring)."""
    import numpy as np

    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(output, dtype=np.float64)
    if a.shape != b.shape:
        raise ExportError(f"output shape {tuple(b.shape)} differs from PyTorch's {tuple(a.shape)}")
    if not np.all(np.isfinite(b)):
        raise ExportError("the exported file's output contains NaN or infinity")
    abs_err = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(a))) if a.size else 0.0
    return abs_err, abs_err / max(scale, SCALE_FLOOR), scale


def random_inputs(input_shape: Sequence[int], n: int = DEFAULT_INPUTS, seed: int = DEFAULT_SEED) -> list:
    """``n`` seeded standard-normal float32 arrays of ``input_shape`` (NCHW, the PyTorch layout)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [rng.standard_normal(tuple(input_shape)).astype(np.float32) for _ in range(n)]


def _torch_reference(model) -> Callable[[Any], Any]:
    import torch

    def run(x):
        with torch.no_grad():
            y = model(torch.from_numpy(x))
        return y.detach().cpu().numpy()

    return run


def check_parity(
    reference: Any,
    run: Callable[[Any], Any],
    *,
    input_shape: Sequence[int],
    nhwc: bool = False,
    tolerance: float | None = TOLERANCES["fp32"],
    n_inputs: int = DEFAULT_INPUTS,
    seed: int = DEFAULT_SEED,
    runtime: str = "runtime",
    inputs: Sequence[Any] | None = None,
    inputs_label: str | None = None,
) -> ParityRecord:
    """Compare ``reference`` (an ``nn.Module``, run in eval mode, or a numpy function) with ``run`` (the exported
    file's runner, taking and returning arrays in the file's layout) on the same random NCHW inputs.

    ``nhwc`` says the file is channels-last: inputs are permuted before ``run`` and its outputs of rank >= 3 back.
    ``inputs`` replaces the random inputs (NCHW arrays; their batch sizes may differ, e.g. for a dynamic batch);
    ``inputs_label`` says what they are in the record (default "random", or "given" for ``inputs``).
    ``tolerance=None`` makes a drift report (``passed=None``). Returns a :class:`ParityRecord`; call
    ``raise_for_failure()`` to turn a failed check into an ExportError.
    """
    import numpy as np

    if hasattr(reference, "eval") and hasattr(reference, "training"):
        training = reference.training
        reference.eval()
        ref_fn = _torch_reference(reference)
    else:
        training, ref_fn = None, reference
    xs = list(inputs) if inputs is not None else random_inputs(input_shape, n_inputs, seed)
    try:
        refs = [np.asarray(ref_fn(x)) for x in xs]
    finally:
        if training is not None:
            reference.train(training)
    outs = []
    for x in xs:
        try:
            outs.append(np.asarray(from_layout(np.asarray(run(to_layout(x, nhwc))), nhwc)))
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(f"{runtime} failed to run the exported file: {first_line(exc)}") from exc
    for r, o in zip(refs, outs):
        if r.shape != o.shape:
            raise ExportError(f"{runtime} output shape {tuple(o.shape)} differs from PyTorch's {tuple(r.shape)}")
    max_abs, max_rel, scale = error_measures(np.concatenate([r.ravel() for r in refs]),
                                             np.concatenate([o.ravel() for o in outs]))
    top1 = None
    if all(r.ndim == 2 and r.shape[-1] > 1 for r in refs):  # classifier logits (batch, classes)
        top1 = float(np.mean(np.concatenate([r.argmax(-1) == o.argmax(-1) for r, o in zip(refs, outs)])))
    passed = None if tolerance is None else bool(max_rel <= tolerance)
    return ParityRecord(
        runtime=runtime, kind="drift" if tolerance is None else "parity", n_inputs=len(xs), seed=seed,
        max_abs_err=max_abs, max_rel_err=max_rel, ref_max_abs=scale, tolerance=tolerance, passed=passed,
        top1_agreement=top1, output_shape=list(refs[0].shape),
        inputs=inputs_label or ("random" if inputs is None else "given"),
    )
