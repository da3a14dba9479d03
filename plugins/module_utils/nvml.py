# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NVML (nvidia-ml-py) -> plain dicts. No Ansible imports; `nvml` is the pynvml module or a fake.

Never raises for a host without GPUs, driver or library: it reports count 0 and the reason."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import os
import shutil
import sys

EXTRA_PATH = "/opt/mlinfra/python"  # where the nvidia_toolkit role puts nvidia-ml-py if the OS lacks it
RUNTIME_BINARY = "nvidia-container-runtime"
RUNTIME_DIRS = ("/usr/bin", "/usr/local/bin", "/usr/sbin", "/usr/local/nvidia/toolkit")


def load_pynvml():
    """(module, None) or (None, reason)."""
    if os.path.isdir(EXTRA_PATH) and EXTRA_PATH not in sys.path:
        sys.path.append(EXTRA_PATH)
    try:
        import pynvml  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        return None, "nvidia-ml-py (pynvml) is not installed on this host: %s" % exc
    return pynvml, None


def text(value):
    """Older bindings return bytes, newer str."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def cuda_version(number):
    """12090 -> '12.9'; 11080 -> '11.8'."""
    if not number:
        return None
    return "%d.%d" % (number // 1000, (number % 1000) // 10)


def runtime_binary(path_env=None):
    found = shutil.which(RUNTIME_BINARY, path=path_env)
    if found:
        return found
    for directory in RUNTIME_DIRS:
        candidate = os.path.join(directory, RUNTIME_BINARY)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _error_reason(nvml, exc):
    names = {"NVMLError_LibraryNotFound": "the NVIDIA driver library (libnvidia-ml.so) is not installed",
             "NVMLError_DriverNotLoaded": "the NVIDIA kernel driver is not loaded",
             "NVMLError_LibRmVersionMismatch": "the NVIDIA driver and its library versions do not match "
                                               "(reboot after a driver upgrade)",
             "NVMLError_NoPermission": "no permission to query the GPUs"}
    for name, reason in names.items():
        cls = getattr(nvml, name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return reason
    return "NVML failed: %s" % text(str(exc))


def _mig_mode(nvml, handle):
    try:
        current, pending = nvml.nvmlDeviceGetMigMode(handle)
    except nvml.NVMLError:  # NotSupported on GPUs without MIG
        return None
    labels = {1: "enabled", 0: "disabled"}
    return {"current": labels.get(current, current), "pending": labels.get(pending, pending)}


def _gpu(nvml, index):
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
    return {
        "index": index,
        "name": text(nvml.nvmlDeviceGetName(handle)),
        "uuid": text(nvml.nvmlDeviceGetUUID(handle)),
        "pci_bus_id": text(nvml.nvmlDeviceGetPciInfo(handle).busId),
        "memory_total_mib": int(nvml.nvmlDeviceGetMemoryInfo(handle).total // (1024 * 1024)),
        "compute_capability": "%d.%d" % (major, minor),
        "mig_mode": _mig_mode(nvml, handle),
    }


def empty(reason):
    return {"count": 0, "gpus": [], "driver_version": None, "cuda_driver_version": None, "nvml_version": None,
            "reason": reason}


def read_gpus(nvml):
    """GPU facts as a dict (see the gpu_facts module's RETURN)."""
    if nvml is None:
        return empty("nvidia-ml-py (pynvml) is not installed on this host")
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        return empty(_error_reason(nvml, exc))
    try:
        count = nvml.nvmlDeviceGetCount()
        facts = {
            "count": count,
            "driver_version": text(nvml.nvmlSystemGetDriverVersion()),
            "cuda_driver_version": cuda_version(nvml.nvmlSystemGetCudaDriverVersion_v2()),
            "nvml_version": text(nvml.nvmlSystemGetNVMLVersion()),
            "gpus": [_gpu(nvml, index) for index in range(count)],
            "reason": None if count else "NVML reports no GPU",
        }
    except nvml.NVMLError as exc:
        return empty(_error_reason(nvml, exc))
    finally:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError:
            pass
    return facts
