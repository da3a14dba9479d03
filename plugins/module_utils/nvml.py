# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NVML (nvidia-ml-py) -> plain dicts. No Ansible imports; `nvml` is the pynvml module or a fake.

Never raises for a host without GPUs, driver or library: it reports count 0 and the reason."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import ctypes
import hashlib
import os
import sys

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import InputError

# Where gpu_facts' action plugin ships the controller's nvidia-ml-py (pynvml.py); first on sys.path,
# so the collection's pinned copy wins over an older one from the OS.
EXTRA_PATH = "/opt/mlinfra/python"
DRIVER_LIBRARY = "libnvidia-ml.so.1"  # the name pynvml loads on Linux
KERNEL_MODULE = "/sys/module/nvidia"  # present while the kernel driver is loaded (NVML checks it first)


def load_pynvml():
    """(module, None) or (None, reason)."""
    if os.path.isdir(EXTRA_PATH) and EXTRA_PATH not in sys.path:
        sys.path.insert(0, EXTRA_PATH)
    try:
        import pynvml  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        return None, "nvidia-ml-py (pynvml) is not installed on this host: %s" % exc
    return pynvml, None


def bindings(pynvml, load_library=ctypes.CDLL):
    """Which nvidia-ml-py this host uses (path, sha256) and whether the driver library loads: what
    gpu_facts' action plugin needs to decide whether to ship the controller's copy."""
    path = getattr(pynvml, "__file__", None) if pynvml else None
    digest = None
    if path:
        with open(path, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
    try:
        load_library(DRIVER_LIBRARY)
        library = True
    except OSError:
        library = False
    return {"path": path, "sha256": digest, "library": library}


def ship_reason(controller, host):
    """Why the controller's pynvml.py should go to this host ('missing' / 'different'), or None. Only
    where the driver library loads: without it the bindings could not read a GPU anyway."""
    if not controller or not host or not host.get("library"):
        return None
    if not host.get("path"):
        return "missing"
    return "different" if host.get("sha256") != controller["sha256"] else None


def as_selection(found):
    """A JMESPath result as a list of GPUs: null (nothing matched) is [], a scalar is [scalar]."""
    if found is None:
        return []
    return list(found) if isinstance(found, list) else [found]


def select(expression, gpus):
    """gpu_facts' `select`: the GPUs a JMESPath expression picks. jmespath is needed only when one is given."""
    try:
        import jmespath  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        raise InputError("select needs the jmespath Python library on the host (Debian/Ubuntu: python3-jmespath); "
                         "install it or drop select") from exc
    try:
        return as_selection(jmespath.search(expression, gpus))
    except jmespath.exceptions.JMESPathError as exc:
        raise InputError("select: %r is not a valid JMESPath expression: %s" % (expression, exc)) from exc


def kernel_module_loaded():
    return os.path.isdir(KERNEL_MODULE)


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


LIBRARY_MISSING = "the NVIDIA driver library (libnvidia-ml.so) is not installed"


def _error_reason(nvml, exc, kernel_module=kernel_module_loaded):
    names = {"NVMLError_LibraryNotFound": LIBRARY_MISSING,
             "NVMLError_DriverNotLoaded": "the NVIDIA kernel driver is not loaded",
             "NVMLError_LibRmVersionMismatch": "the NVIDIA driver and its library versions do not match "
                                               "(reboot after a driver upgrade)",
             "NVMLError_NoPermission": "no permission to query the GPUs"}
    for name, reason in names.items():
        cls = getattr(nvml, name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return reason
    if not kernel_module():
        # The real libnvidia-ml.so as root creates /dev/nvidiactl when it is missing; where a device cgroup
        # (a container) refuses to open it, nvmlInit says Unknown Error instead of Driver Not Loaded.
        return "the NVIDIA kernel driver is not loaded (NVML: %s; no %s)" % (text(str(exc)), KERNEL_MODULE)
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
    return {"count": 0, "gpus": [], "failed_gpus": [], "driver_version": None, "cuda_driver_version": None,
            "nvml_version": None, "reason": reason}


def _devices(nvml, count):
    """(usable GPUs, failed GPUs): one device's NVML error (GpuIsLost on 1 of 8) must not hide the others."""
    usable, failed = [], []
    for index in range(count):
        try:
            usable.append(_gpu(nvml, index))
        except nvml.NVMLError as exc:
            failed.append({"index": index, "error": text(str(exc))})
    return usable, failed


def _devices_reason(total, failed):
    if failed:
        return "%d of %d GPUs failed in NVML: %s" % (len(failed), total, "; ".join(
            "GPU %d: %s" % (f["index"], f["error"]) for f in failed))
    return None if total else "NVML reports no GPU"


def host_gpus(pynvml, missing_reason, library):
    """GPU facts for this host: read through pynvml, or count 0 saying what is missing (the library first)."""
    if pynvml is not None:
        return read_gpus(pynvml)
    return empty(missing_reason if library else LIBRARY_MISSING)


def read_gpus(nvml, kernel_module=kernel_module_loaded):
    """GPU facts as a dict (see the gpu_facts module's RETURN). count is the number of usable GPUs."""
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        return empty(_error_reason(nvml, exc, kernel_module))
    try:
        total = nvml.nvmlDeviceGetCount()
        usable, failed = _devices(nvml, total)
        facts = {
            "count": len(usable),
            "driver_version": text(nvml.nvmlSystemGetDriverVersion()),
            "cuda_driver_version": cuda_version(nvml.nvmlSystemGetCudaDriverVersion_v2()),
            "nvml_version": text(nvml.nvmlSystemGetNVMLVersion()),
            "gpus": usable,
            "failed_gpus": failed,
            "reason": _devices_reason(total, failed),
        }
    except nvml.NVMLError as exc:
        return empty(_error_reason(nvml, exc, kernel_module))
    finally:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError:
            pass
    return facts
