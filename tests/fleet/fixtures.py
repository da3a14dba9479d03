"""Test fixture images for the ML stack (stand-ins for images no registry here can give us),
built once (cached by content hash) and pushed to a fleet's registry."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .local_docker import FleetError
from .images import IMAGES_DIR, _build_context, base_image, context_hash

FIXTURES_DIR = IMAGES_DIR / "fixtures"
# service -> (fixture dir, tag pushed to the fleet registry)
FIXTURES = {
    "postgres": ("postgres", "fixtures/postgres:15-fixture"),
    "redis": ("redis", "fixtures/redis:7-fixture"),
    "mlflow": ("mlflow", "fixtures/mlflow:3.17.2-fixture"),
    "tf_serving": ("tfserving", "fixtures/tfserving:2.18.0-fixture"),
    # Not an ml_stack service: the S3-compatible store the tests run beside the stack (inventory: ml_stack_s3_fixture_image).
    "s3_fixture": ("moto", "fixtures/moto:5.1.22-fixture"),
}


def _wheels(cache_root, requirements, log):
    """Download the wheels a fixture installs, on this machine (pip inside containers has no TLS)."""
    target = Path(cache_root) / ("wheels-" + context_hash(requirements.read_text()))
    if (target / ".complete").exists():
        return target
    if sys.version_info[:2] != (3, 11):
        raise FleetError("the MLflow fixture installs wheels for Debian 12's Python 3.11: run the fleet "
                         "with Python 3.11")
    log(f"downloading wheels for {requirements} into {target}")
    target.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(target), "-r", str(requirements)],
                          capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        raise FleetError(f"pip download for the MLflow fixture failed:\n{proc.stderr[-2000:]}")
    (target / ".complete").touch()
    return target


def fixture_image(client, service, cache_root, log=print):
    """Build (or reuse) the fixture image for a service; return its local tag."""
    directory = FIXTURES[service][0]
    context = FIXTURES_DIR / directory
    base = base_image(client, log)
    tag = f"mlinfra-fleet/fixture-{directory}:" + context_hash(base, context_dir=context)
    requirements = context / "requirements.txt"
    with tempfile.TemporaryDirectory(prefix="mlinfra-fixture-") as tmp:
        build_dir = Path(tmp) / directory
        shutil.copytree(context, build_dir)
        if requirements.exists():
            shutil.copytree(_wheels(cache_root, requirements, log), build_dir / "wheels")
        return _build_context(client, tag, build_dir, base, log, label=f"fixture-{directory}")


def push_fixtures(client, registry_port, cache_root, log=print):
    """Build all fixture images and push them to the fleet registry; return {service: in-fleet name}."""
    names = {}
    for service, (_directory, remote) in FIXTURES.items():
        local = fixture_image(client, service, cache_root, log)
        repo, tag = remote.rsplit(":", 1)
        client.images.get(local).tag(f"127.0.0.1:{registry_port}/{repo}", tag)
        for line in client.images.push(f"127.0.0.1:{registry_port}/{repo}", tag, stream=True, decode=True):
            if "error" in line:
                raise FleetError(f"pushing {remote} to the fleet registry failed: {line['error']}")
        names[service] = remote
    return names
