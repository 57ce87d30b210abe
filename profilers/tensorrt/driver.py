"""Why CUDA or TensorRT could not start, in one line: an old driver, the wrong CUDA build, or no GPU.

``pip install tensorrt`` (any 10.x since 10.14, and 11) installs the CUDA 13 build, which needs NVIDIA driver 580
or newer; many T4 images run 535 or 550 (CUDA 12.2 / 12.4). A driver that is too old shows up as
``cudaErrorInsufficientDriver`` on the first cuda-python call, or as a bare ``TypeError: pybind11::init(): factory
function returned nullptr`` from ``trt.Builder`` / ``trt.Runtime``; both are turned into a line that names the
driver's CUDA version, the build that was installed and the pip command that matches the driver.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from profilers.common import ProfilerError

__all__ = ["cuda_failure", "cuda_failure_reason", "driver_cuda_version", "load_cudart", "set_device",
           "tensorrt_cuda_major", "tensorrt_init_failure", "version_text"]


def load_cudart() -> Any:
    """cuda-python's runtime module: ``cuda.bindings.runtime`` (cuda-python >= 12.6), else ``cuda.cudart``."""
    try:
        from cuda.bindings import runtime as cudart  # noqa: PLC0415
    except ImportError:
        try:
            from cuda import cudart  # noqa: PLC0415  (older cuda-python)
        except ImportError:
            raise ProfilerError("cuda-python's runtime bindings are not installed (the 'cuda' package alone is not "
                                "enough): pip install \"zendeploy[tensorrt]\"") from None
    return cudart


def version_text(v: int | None) -> str:
    """CUDA's integer version (12020) as text ("12.2")."""
    return f"{v // 1000}.{(v % 1000) // 10}" if v else "none"


def _match_hint(driver: int) -> str:
    major = driver // 1000  # the newest CUDA major this driver runs
    return f"pip install \"cuda-python>={major},<{major + 1}\" \"tensorrt-cu{major}>=10,<11\""


def cuda_failure_reason(call: str, err: Any, driver: int | None, runtime: int | None) -> str:
    """One line for a failed first CUDA call, naming the likely cause: a driver older than the CUDA runtime that
    cuda-python was built for (CUDA 13 builds need driver 580 or newer), or no GPU at all."""
    what = getattr(err, "name", err)
    if driver is not None and runtime is not None and 0 < driver < runtime:
        return (f"the NVIDIA driver supports CUDA {version_text(driver)}, older than the CUDA {version_text(runtime)} "
                f"runtime this cuda-python needs ({call}: {what}); update the driver (CUDA 13 needs 580+) or install "
                f"the CUDA {driver // 1000} builds it runs: {_match_hint(driver)}")
    if not driver:
        return f"no NVIDIA driver or GPU is available ({call}: {what})"
    return f"no CUDA GPU available ({call}: {what}; driver CUDA {version_text(driver)})"


def tensorrt_cuda_major() -> int | None:
    """The CUDA major of the installed TensorRT wheels (``tensorrt-cu12`` / ``tensorrt-cu13`` and their ``-libs``),
    or None (a container's system TensorRT, or not installed)."""
    for major in (13, 12, 11):
        for name in (f"tensorrt-cu{major}-libs", f"tensorrt_cu{major}_libs", f"tensorrt-cu{major}"):
            try:
                version(name)
                return major
            except PackageNotFoundError:
                continue
    return None


def _version(cudart: Any, call: str) -> int | None:
    try:
        err, value = getattr(cudart, call)()
    except Exception:  # noqa: BLE001 - a binding that cannot even load: the caller reports "unknown"
        return None
    return int(value) if int(err) == 0 else None


def driver_cuda_version(cudart: Any) -> int | None:
    """``cudaDriverGetVersion``: 0 without a driver, None when the call itself fails."""
    return _version(cudart, "cudaDriverGetVersion")


def cuda_failure(cudart: Any, call: str, err: Any) -> str:
    """:func:`cuda_failure_reason` for a failed ``call``, with the driver's and the runtime's versions read here."""
    return cuda_failure_reason(call, err, driver_cuda_version(cudart), _version(cudart, "cudaRuntimeGetVersion"))


def tensorrt_init_failure(exc: BaseException, driver: int | None, trt_cuda: int | None, what: str = "Builder") -> str:
    """One line for ``trt.Builder`` / ``trt.Runtime`` failing to start (TensorRT only logs the CUDA error and the
    Python binding raises ``TypeError``)."""
    if driver and trt_cuda and driver // 1000 < trt_cuda:
        return (f"TensorRT cannot start (trt.{what}): it is the CUDA {trt_cuda} build (tensorrt-cu{trt_cuda}) and the "
                f"NVIDIA driver supports only CUDA {version_text(driver)}; update the driver (CUDA 13 needs 580+) or "
                f"install the CUDA {driver // 1000} builds: {_match_hint(driver)}")
    if driver == 0:
        return f"TensorRT cannot start (trt.{what}): no NVIDIA driver or GPU is available"
    return (f"TensorRT cannot start (trt.{what}: {exc}); driver CUDA {version_text(driver)}, TensorRT's CUDA build "
            f"{trt_cuda or 'unknown'}: see the TensorRT log above")


def set_device(cudart: Any, device: int) -> None:
    """``cudaSetDevice`` (TensorRT builds and runs on the current device), failing with the cause in one line."""
    err = cudart.cudaSetDevice(int(device))
    err = err[0] if isinstance(err, tuple) else err
    if int(err) == 0:
        return
    driver, runtime = driver_cuda_version(cudart), _version(cudart, "cudaRuntimeGetVersion")
    if driver and runtime and driver >= runtime:
        raise ProfilerError(f"CUDA device {device} cannot be used (cudaSetDevice: {getattr(err, 'name', err)}): is "
                            f"there a GPU with that index (CUDA_VISIBLE_DEVICES)?")
    raise ProfilerError(cuda_failure_reason("cudaSetDevice", err, driver, runtime))
