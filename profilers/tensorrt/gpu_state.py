"""Clocks, power and temperature of an NVIDIA GPU, read through NVML (``nvidia-ml-py``, module ``pynvml``).

The T4 runner reads :func:`read_gpu_state` before and after every unit's timing and keeps both with the
result, so a table shows whether a unit was timed at full clocks or while the GPU throttled (a T4 is a
70 W passively cooled card: in a badly ventilated chassis it drops from its 1590 MHz boost clock within
seconds). ``throttle`` names the active clock-event reasons other than idle; ``sm_clock_mhz`` below
``max_sm_clock_mhz`` under load is the sign to look for.

For repeatable tables lock the clocks before profiling (needs root; T4 boost clock 1590 MHz)::

    sudo nvidia-smi -pm 1                 # persistence mode: the driver stays loaded between runs
    sudo nvidia-smi --lock-gpu-clocks=1590,1590
    ...                                   # profile
    sudo nvidia-smi --reset-gpu-clocks

NVML numbers GPUs by PCI bus, CUDA (by default) fastest first and after ``CUDA_VISIBLE_DEVICES``: the runners
find the GPU they time by its PCI bus id (:func:`cuda_pci_bus_id`), never by index, so on a machine with several
GPUs the readings are those of the GPU that ran the unit.

Without NVML (no driver, or ``nvidia-ml-py`` not installed) the state is ``{"available": False,
"reason": ...}``: the timing goes on, and the record says why the readings are missing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["THROTTLE_REASONS", "cuda_pci_bus_id", "read_gpu_state"]

# NVML clock-event reason bits (nvml.h, nvmlClocksEventReason*): what holds the clocks below the maximum
THROTTLE_REASONS = {
    0x2: "applications clocks setting",
    0x4: "software power cap",
    0x8: "hardware slowdown",
    0x10: "sync boost",
    0x20: "software thermal slowdown",
    0x40: "hardware thermal slowdown",
    0x80: "hardware power brake",
    0x100: "display clock setting",
}


def _reasons(mask: int) -> list[str]:
    return [name for bit, name in THROTTLE_REASONS.items() if mask & bit]


def cuda_pci_bus_id(cudart: Any, device: int) -> str | None:
    """PCI bus id ("0000:3B:00.0") of CUDA device ``device`` (``cudaDeviceGetPCIBusId``), None when CUDA cannot
    tell (no driver)."""
    try:
        err, bus = cudart.cudaDeviceGetPCIBusId(32, int(device))
    except Exception:  # noqa: BLE001 - bindings without the call, or no driver at all
        return None
    if int(err) != 0:
        return None
    text = bus.decode(errors="replace") if isinstance(bus, (bytes, bytearray)) else str(bus)
    return text.split("\x00", 1)[0].strip() or None


def read_gpu_state(index: int = 0, *, pci_bus_id: str | None = None) -> dict[str, Any]:
    """One reading of a GPU: SM and memory clocks (MHz), the maximum SM clock, power (W), temperature (degrees C)
    and the active throttle reasons. The GPU is the one at ``pci_bus_id`` (CUDA's device, see
    :func:`cuda_pci_bus_id`), else NVML's ``index`` (NVML's order, which can differ from CUDA's). A field the GPU
    does not report (a vGPU, an old driver) is left out."""
    try:
        import pynvml  # noqa: PLC0415
    except ImportError:
        return {"available": False, "reason": "nvidia-ml-py is not installed (pip install nvidia-ml-py)"}
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return {"available": False, "reason": f"NVML: {exc}"}
    try:
        if pci_bus_id:
            handle = pynvml.nvmlDeviceGetHandleByPciBusId(pci_bus_id.encode())
        else:
            handle = pynvml.nvmlDeviceGetHandleByIndex(int(index))
        readers = {
            "sm_clock_mhz": lambda: pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
            "mem_clock_mhz": lambda: pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM),
            "max_sm_clock_mhz": lambda: pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM),
            "power_w": lambda: round(pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0, 2),
            "temperature_c": lambda: pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU),
        }
        state: dict[str, Any] = {"available": True, "gpu": ({"pci_bus_id": pci_bus_id} if pci_bus_id else
                                                           {"nvml_index": int(index)})}
        for name, read in readers.items():
            try:
                state[name] = read()
            except pynvml.NVMLError:
                pass
        reasons = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            pynvml, "nvmlDeviceGetCurrentClocksThrottleReasons")
        try:
            state["throttle"] = _reasons(int(reasons(handle)))
        except pynvml.NVMLError:
            pass
        return state
    except pynvml.NVMLError as exc:
        return {"available": False, "reason": f"NVML: {exc}"}
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass
