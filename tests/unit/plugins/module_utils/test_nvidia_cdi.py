"""The CDI step against tests/stubs/nvidia-ctk, which normalises `cdi generate --output` as upstream does
(pkg/nvcdi/spec normalizePath: `.yaml` appended unless the path ends in .yaml or .json)."""

import os
import subprocess
from pathlib import Path

import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import nvidia_install as ni

STUB = str(Path(__file__).resolve().parents[3] / "stubs" / "nvidia-ctk")


class Host:
    """The effects the CDI step uses: which() and run(), here for real against the stub."""

    def __init__(self, ctk=STUB, enabled=()):
        self.ctk, self.enabled, self.calls = ctk, set(enabled), []

    def which(self, name):
        return self.ctk if name == "nvidia-ctk" else None

    def run(self, argv):
        self.calls.append(argv)
        if argv[:2] == ["systemctl", "is-enabled"]:
            return (0, "enabled\n", "") if argv[-1] in self.enabled else (1, "disabled\n", "")
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        return proc.returncode, proc.stdout, proc.stderr


def listing(directory):
    return sorted(os.listdir(directory))


@pytest.mark.parametrize("name", ["nvidia.yaml", "nvidia.json", "gpus.yml"])
def test_spec_written_where_asked_non_empty_and_nothing_stray(tmp_path, name):
    path = tmp_path / "etc" / "cdi" / name
    assert ni.ensure_cdi_spec(Host(), str(path), False, unit_dirs=()) is True
    content = path.read_text()
    assert content.startswith("cdiVersion") or content.startswith('{"cdiVersion"')
    assert "nvidia.com/gpu" in content
    assert listing(path.parent) == [name]
    assert ni.ensure_cdi_spec(Host(), str(path), False, unit_dirs=()) is False
    assert listing(path.parent) == [name]


def test_check_mode_writes_nothing(tmp_path):
    path = tmp_path / "cdi" / "nvidia.yaml"
    assert ni.ensure_cdi_spec(Host(), str(path), True, unit_dirs=()) is True
    assert not path.parent.exists() or listing(path.parent) == []


def test_generate_failure_is_reported_and_nothing_written(tmp_path):
    failing = tmp_path / "nvidia-ctk"
    failing.write_text('#!/bin/sh\necho \'level=error msg="failed to generate CDI spec: failed to initialize NVML: '
                       'ERROR_LIBRARY_NOT_FOUND"\' >&2\nexit 1\n')
    failing.chmod(0o755)
    path = tmp_path / "cdi" / "nvidia.yaml"
    path.parent.mkdir()
    with pytest.raises(ni.ToolkitError, match="ERROR_LIBRARY_NOT_FOUND"):
        ni.ensure_cdi_spec(Host(ctk=str(failing)), str(path), False, unit_dirs=())
    assert listing(path.parent) == []


def test_nvidia_cdi_refresh_keeps_the_spec_when_enabled(tmp_path):
    """Toolkit 1.18+ ships nvidia-cdi-refresh.service, which writes /var/run/cdi/nvidia.yaml itself (a
    higher-priority CDI directory than /etc/cdi): a second spec of ours would only go stale beside it."""
    units = tmp_path / "lib" / "systemd" / "system"
    units.mkdir(parents=True)
    (units / "nvidia-cdi-refresh.service").write_text("[Unit]\n")
    path = tmp_path / "etc" / "cdi" / "nvidia.yaml"
    host = Host(enabled={"nvidia-cdi-refresh.service"})
    assert ni.ensure_cdi_spec(host, str(path), False, unit_dirs=(str(units),)) is False
    assert not path.exists() and all(call[0] != STUB for call in host.calls)
    disabled = Host()
    assert ni.ensure_cdi_spec(disabled, str(path), False, unit_dirs=(str(units),)) is True
    assert path.read_text().startswith("cdiVersion")
