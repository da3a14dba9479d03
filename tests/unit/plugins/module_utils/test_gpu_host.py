"""gpu_host: the facts gpu_facts and nvidia_toolkit return, the ship decision, the CPU-host skip."""

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import gpu_host, nvml


def no_bindings(monkeypatch, library):
    monkeypatch.setattr(nvml, "load_pynvml", lambda: (None, "nvidia-ml-py (pynvml) is not installed on this host"))
    monkeypatch.setattr(nvml, "bindings", lambda pynvml: {"path": None, "sha256": None, "library": library})


def test_driver_library_without_bindings_asks_for_the_controllers_copy_and_reads_nothing(monkeypatch):
    no_bindings(monkeypatch, library=True)
    facts, found, ship = gpu_host.read(controller_sha256="ab" * 32)
    assert (facts, ship) == (None, "missing") and found["library"] is True


def test_without_the_controllers_digest_it_reads_with_what_it_has(monkeypatch):
    no_bindings(monkeypatch, library=True)
    facts, _found, ship = gpu_host.read()
    assert ship is None and facts["count"] == 0 and "not installed" in facts["reason"]


def test_no_driver_library_never_ships(monkeypatch):
    no_bindings(monkeypatch, library=False)
    facts, _found, ship = gpu_host.read(controller_sha256="ab" * 32)
    assert ship is None and facts["count"] == 0 and "runtime_binary" in facts


def test_skip_only_when_asked_and_no_usable_gpu():
    assert "NVML reports no GPU" in gpu_host.skip_reason({"count": 0, "reason": None}, True)
    assert gpu_host.skip_reason({"count": 0, "reason": "driver not loaded"}, False) is None
    assert gpu_host.skip_reason({"count": 2, "reason": None}, True) is None
