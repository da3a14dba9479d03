"""nvml.read_gpus with a fake pynvml: several GPUs, MIG or not, bytes or str, no library, mismatch."""

import hashlib
import types

import jmespath
import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import nvml as nv
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import nvidia_runtime
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import InputError


# pynvml's error classes and their str() (nvidia-ml-py 13: NVMLError.__str__ reads nvmlErrorString).
ERRORS = {"LibraryNotFound": "NVML Shared Library Not Found", "DriverNotLoaded": "Driver Not Loaded",
          "LibRmVersionMismatch": "RM has detected an NVML/RM version mismatch.", "NotSupported": "Not Supported",
          "NoPermission": "Insufficient Permissions", "GpuIsLost": "GPU is lost", "Unknown": "Unknown Error"}


def fake_pynvml(gpus=(), as_bytes=False, init_error=None, mig=None):
    """A stand-in for pynvml with the calls nvml.py makes. A GPU given as {"error": NAME, "at": CALL}
    raises NVMLError_NAME from that call (default nvmlDeviceGetHandleByIndex), as a lost GPU does."""
    mod = types.SimpleNamespace()

    class NVMLError(Exception):
        pass

    for name, message in ERRORS.items():
        setattr(mod, "NVMLError_" + name, type("NVMLError_" + name, (NVMLError,), {"__str__": lambda self, m=message: m}))
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

    def call(name, value):
        def fn(h):
            if gpus[h].get("error") and gpus[h].get("at", "nvmlDeviceGetHandleByIndex") == name:
                raise getattr(mod, "NVMLError_" + gpus[h]["error"])()
            return value(h)
        setattr(mod, name, fn)

    call("nvmlDeviceGetHandleByIndex", lambda i: i)
    call("nvmlDeviceGetMemoryInfo", lambda h: types.SimpleNamespace(total=gpus[h]["mib"] * 1024 * 1024))
    mod.nvmlDeviceGetName = lambda h: enc(gpus[h]["name"])
    mod.nvmlDeviceGetUUID = lambda h: enc(gpus[h]["uuid"])
    mod.nvmlDeviceGetPciInfo = lambda h: types.SimpleNamespace(busId=enc("00000000:%02X:00.0" % (h + 7)))
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
    assert facts["failed_gpus"] == []


@pytest.mark.parametrize("module_loaded, words", [
    (False, "the NVIDIA kernel driver is not loaded (NVML: Unknown Error; no /sys/module/nvidia)"),
    (True, "NVML failed: Unknown Error"),
])
def test_unknown_error_without_kernel_module_says_driver_not_loaded(module_loaded, words):
    """The real libnvidia-ml.so (535) in a container without the kernel module: nvmlInit creates
    /dev/nvidiactl, the device cgroup refuses to open it, and NVML says Unknown Error, not DriverNotLoaded."""
    facts = nv.read_gpus(fake_pynvml([A100], init_error="Unknown"), kernel_module=lambda: module_loaded)
    assert facts["count"] == 0 and facts["reason"] == words


def test_one_lost_gpu_of_three_leaves_two_usable():
    lost = dict(T4, error="GpuIsLost")
    facts = nv.read_gpus(fake_pynvml([A100, lost, dict(A100, uuid="GPU-bbbb")]))
    assert facts["count"] == 2 and [g["index"] for g in facts["gpus"]] == [0, 2]
    assert facts["failed_gpus"] == [{"index": 1, "error": "GPU is lost"}]
    assert facts["reason"] == "1 of 3 GPUs failed in NVML: GPU 1: GPU is lost"


def test_a_gpu_failing_after_its_handle_is_listed_too():
    facts = nv.read_gpus(fake_pynvml([dict(A100, error="Unknown", at="nvmlDeviceGetMemoryInfo"), T4]))
    assert facts["count"] == 1 and facts["gpus"][0]["uuid"] == "GPU-tttt"
    assert facts["failed_gpus"] == [{"index": 0, "error": "Unknown Error"}]


def test_every_gpu_failing_means_zero_usable():
    facts = nv.read_gpus(fake_pynvml([dict(A100, error="GpuIsLost")]))
    assert facts["count"] == 0 and facts["gpus"] == [] and facts["failed_gpus"][0]["index"] == 0
    assert "1 of 1 GPUs failed" in facts["reason"]


@pytest.mark.parametrize("found, expected", [(None, []), ([], []), (["GPU-a"], ["GPU-a"]), ("GPU-a", ["GPU-a"]),
                                             (0, [0])])
def test_selection_is_always_a_list(found, expected):
    """JMESPath gives null for a selection that matches nothing ([0].uuid on no GPU), a scalar for [0].uuid."""
    assert nv.as_selection(found) == expected


def test_library_missing_reports_zero():
    facts = nv.host_gpus(None, "nvidia-ml-py (pynvml) is not installed on this host", True)
    assert facts["count"] == 0 and "nvidia-ml-py" in facts["reason"]


def test_driver_but_no_gpu():
    facts = nv.read_gpus(fake_pynvml([]))
    assert facts["count"] == 0 and facts["reason"] == "NVML reports no GPU" and facts["driver_version"] == "575.57.08"
    assert facts["failed_gpus"] == []


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
    assert nvidia_runtime.runtime_binary(str(tmp_path)) == str(binary)


def test_bindings_report_path_hash_and_driver_library(tmp_path):
    source = tmp_path / "pynvml.py"
    source.write_bytes(b"# pynvml\n")
    loaded = []

    def no_library(name):
        loaded.append(name)
        raise OSError("%s: cannot open shared object file" % name)

    found = nv.bindings(types.SimpleNamespace(__file__=str(source)), load_library=no_library)
    assert found == {"path": str(source), "library": False, "sha256": hashlib.sha256(b"# pynvml\n").hexdigest()}
    assert loaded == ["libnvidia-ml.so.1"]
    assert nv.bindings(None, load_library=lambda name: None) == {"path": None, "sha256": None, "library": True}


OURS = {"path": "/venv/pynvml.py", "sha256": "aa"}


@pytest.mark.parametrize("controller, host, expected", [
    (OURS, {"path": None, "sha256": None, "library": True}, "missing"),
    (OURS, {"path": "/usr/lib/python3/dist-packages/pynvml.py", "sha256": "bb", "library": True}, "different"),
    (OURS, {"path": "/opt/mlinfra/python/pynvml.py", "sha256": "aa", "library": True}, None),
    (OURS, {"path": None, "sha256": None, "library": False}, None),  # a CPU host: nothing to ship
    (None, {"path": None, "sha256": None, "library": True}, None),  # nothing on the controller to ship
    (OURS, None, None),
])
def test_ship_bindings_only_where_missing_or_different_and_useful(controller, host, expected):
    assert nv.ship_reason(controller, host) == expected


@pytest.mark.parametrize("library, words", [(False, "libnvidia-ml.so) is not installed"), (True, "nvidia-ml-py")])
def test_without_bindings_the_reason_names_what_is_missing(library, words):
    """A CPU host has neither the driver library nor the bindings (none are shipped there): say the library."""
    facts = nv.host_gpus(None, "nvidia-ml-py (pynvml) is not installed on this host", library)
    assert facts["count"] == 0 and words in facts["reason"]


def test_with_bindings_the_gpus_are_read():
    assert nv.host_gpus(fake_pynvml([T4]), None, True)["count"] == 1


def test_select_picks_gpus_and_refuses_a_bad_expression():
    gpus = [{"index": 0, "uuid": "GPU-aaaa"}, {"index": 1, "uuid": "GPU-bbbb"}]
    assert nv.select("[?index == `1`].uuid", gpus) == ["GPU-bbbb"]
    assert nv.select("[0].uuid", []) == []
    with pytest.raises(InputError, match="not a valid JMESPath expression"):
        nv.select("[?index ==", gpus)
