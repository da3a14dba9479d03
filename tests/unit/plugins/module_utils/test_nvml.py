"""nvml.read_gpus with a fake pynvml: several GPUs, MIG or not, bytes or str, no library, mismatch."""

import types

import jmespath
import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import nvml as nv


def fake_pynvml(gpus=(), as_bytes=False, init_error=None, mig=None):
    """A stand-in for pynvml with the calls nvml.py makes."""
    mod = types.SimpleNamespace()

    class NVMLError(Exception):
        pass

    for name in ("LibraryNotFound", "DriverNotLoaded", "LibRmVersionMismatch", "NotSupported", "NoPermission"):
        setattr(mod, "NVMLError_" + name, type("NVMLError_" + name, (NVMLError,), {}))
    mod.NVMLError = NVMLError
    enc = (lambda s: s.encode()) if as_bytes else (lambda s: s)
    mod.shutdowns = 0

    def init():
        if init_error:
            raise getattr(mod, "NVMLError_" + init_error)()

    def shutdown():
        mod.shutdowns += 1

    def mig_mode(handle):
        if (mig or {}).get(handle) is None:
            raise mod.NVMLError_NotSupported()
        return mig[handle]

    mod.nvmlInit, mod.nvmlShutdown = init, shutdown
    mod.nvmlDeviceGetCount = lambda: len(gpus)
    mod.nvmlSystemGetDriverVersion = lambda: enc("575.57.08")
    mod.nvmlSystemGetCudaDriverVersion_v2 = lambda: 12090
    mod.nvmlSystemGetNVMLVersion = lambda: enc("12.575.57.08")
    mod.nvmlDeviceGetHandleByIndex = lambda i: i
    mod.nvmlDeviceGetName = lambda h: enc(gpus[h]["name"])
    mod.nvmlDeviceGetUUID = lambda h: enc(gpus[h]["uuid"])
    mod.nvmlDeviceGetPciInfo = lambda h: types.SimpleNamespace(busId=enc("00000000:%02X:00.0" % (h + 7)))
    mod.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(total=gpus[h]["mib"] * 1024 * 1024)
    mod.nvmlDeviceGetCudaComputeCapability = lambda h: gpus[h]["cc"]
    mod.nvmlDeviceGetMigMode = mig_mode
    return mod


A100 = {"name": "NVIDIA A100-SXM4-80GB", "uuid": "GPU-aaaa", "mib": 81920, "cc": (8, 0)}
T4 = {"name": "Tesla T4", "uuid": "GPU-tttt", "mib": 15360, "cc": (7, 5)}


@pytest.mark.parametrize("as_bytes", [False, True])
def test_several_gpus_bytes_or_str(as_bytes):
    fake = fake_pynvml([A100, T4], as_bytes=as_bytes, mig={0: (1, 0)})
    facts = nv.read_gpus(fake)
    assert facts["count"] == 2 and facts["reason"] is None
    assert facts["driver_version"] == "575.57.08" and facts["cuda_driver_version"] == "12.9"
    assert facts["nvml_version"] == "12.575.57.08"
    assert facts["gpus"][0] == {"index": 0, "name": "NVIDIA A100-SXM4-80GB", "uuid": "GPU-aaaa",
                                "pci_bus_id": "00000000:07:00.0", "memory_total_mib": 81920,
                                "compute_capability": "8.0", "mig_mode": {"current": "enabled", "pending": "disabled"}}
    assert facts["gpus"][1]["mig_mode"] is None and facts["gpus"][1]["compute_capability"] == "7.5"
    assert fake.shutdowns == 1


@pytest.mark.parametrize("error, words", [
    ("LibraryNotFound", "libnvidia-ml.so"),
    ("DriverNotLoaded", "kernel driver is not loaded"),
    ("LibRmVersionMismatch", "versions do not match"),
])
def test_no_driver_or_mismatch_reports_zero(error, words):
    facts = nv.read_gpus(fake_pynvml([A100], init_error=error))
    assert facts["count"] == 0 and facts["gpus"] == [] and words in facts["reason"]


def test_library_missing_reports_zero():
    facts = nv.read_gpus(None)
    assert facts["count"] == 0 and "nvidia-ml-py" in facts["reason"]


def test_driver_but_no_gpu():
    facts = nv.read_gpus(fake_pynvml([]))
    assert facts["count"] == 0 and facts["reason"] == "NVML reports no GPU" and facts["driver_version"] == "575.57.08"


@pytest.mark.parametrize("number, expected", [(12090, "12.9"), (11080, "11.8"), (12000, "12.0"), (0, None)])
def test_cuda_version(number, expected):
    assert nv.cuda_version(number) == expected


def test_select_large_gpus_by_jmespath():
    gpus = nv.read_gpus(fake_pynvml([A100, T4, dict(A100, uuid="GPU-bbbb")]))["gpus"]
    assert jmespath.search("[?memory_total_mib > `40960`].uuid", gpus) == ["GPU-aaaa", "GPU-bbbb"]
    assert jmespath.search("[?compute_capability == '7.5'].index", gpus) == [1]


def test_runtime_binary_found_on_path(tmp_path):
    binary = tmp_path / "nvidia-container-runtime"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert nv.runtime_binary(str(tmp_path)) == str(binary)
