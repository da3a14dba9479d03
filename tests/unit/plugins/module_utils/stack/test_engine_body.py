"""The container-create body the engine sends is exactly what the Docker SDK used to send, so containers
created before the switch to docker_api compare equal afterwards (no Docker: the SDK only builds dicts)."""

import docker
import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import engine, spec

from test_spec_compare import MLFLOW, PG, SECRETS, TF, params


def sdk_body(desired, command=None, oneshot=False):
    """The pre-docker_api code path, kept here as the reference."""
    api = docker.APIClient(base_url="unix:///nonexistent.sock", version="1.41")
    host_config = api.create_host_config(
        port_bindings={port: [tuple(b) for b in binds] for port, binds in desired["ports"].items()},
        mounts=[docker.types.Mount(t, s, type=k, read_only=ro) for k, s, t, ro in desired["mounts"]],
        mem_limit=desired["memory"], memswap_limit=-1 if desired["memory"] else None,
        nano_cpus=desired["nano_cpus"], shm_size=desired["shm_size"],
        ulimits=[docker.types.Ulimit(name=u["Name"], soft=u["Soft"], hard=u["Hard"]) for u in desired["ulimits"]],
        restart_policy=None if oneshot else desired["restart_policy"],
        log_config=docker.types.LogConfig(type=desired["log_config"]["Type"], config=desired["log_config"]["Config"])
        if desired["log_config"] else None,
        device_requests=[docker.types.DeviceRequest(driver=r["Driver"], count=r["Count"], device_ids=r["DeviceIDs"],
                                                    capabilities=r["Capabilities"]) for r in desired["device_requests"] or []]
        or None)
    networking = api.create_networking_config({desired["network"]: api.create_endpoint_config(
        aliases=None if oneshot else desired["aliases"])})
    config = api.create_container_config(
        desired["image"], command if command is not None else desired["command"], environment=desired["env"],
        labels=desired["labels"], ports=[tuple(p.split("/")) for p in desired["ports"]], healthcheck=desired["healthcheck"],
        host_config=host_config, networking_config=networking, detach=True)
    if config.get("Healthcheck"):  # the SDK's Healthcheck spells out unset fields as null; dockerd reads both alike
        config["Healthcheck"] = {k: v for k, v in config["Healthcheck"].items() if v is not None}
    return {k: v for k, v in config.items() if v not in (None, "", [], {}) or k in ("Mounts", "Env")}


def ours(desired, command=None, oneshot=False):
    body = engine.create_body(desired, command, oneshot)
    return {k: v for k, v in body.items() if v not in (None, "", [], {}) or k in ("Mounts", "Env")}


FULL = dict(PG, ports=["127.0.0.1:5432:5432", "10.0.0.5:5432:5432", "9187/udp"], cpus=1.5, shm_size="256m",
            ulimits=["nofile=20000:40000"], log_driver="json-file", log_options={"max-size": "10m", "max-file": 3},
            volumes=["/srv/conf:/etc/conf:ro", "extra:/extra"], env={"TZ": "UTC"})


@pytest.mark.parametrize("services", [
    {"postgres": FULL},
    {"postgres": PG, "redis": {"image": "redis:7.4.1", "appendonly": True, "memory": "1g"}},
    {"postgres": PG, "mlflow": MLFLOW},
    {"tf_serving": dict(TF, gpus=["all"])},
    {"tf_serving": dict(TF, gpus=["0", "GPU-1234"], memory=None, healthcheck={"disable": True})},
], ids=["postgres-every-field", "redis", "mlflow", "tf-all-gpus", "tf-gpu-ids-no-memory"])
def test_create_body_matches_the_sdk(services):
    for desired in spec.desired_state(params(**services), SECRETS).values():
        assert ours(desired) == sdk_body(desired)
        # A one-shot publishes no ports (one left running must not hold the server's): the SDK body without them.
        oneshot = ours(desired, ["mlflow", "db", "upgrade"], oneshot=True)
        expected = sdk_body(dict(desired, ports={}), ["mlflow", "db", "upgrade"], True)
        assert expected["HostConfig"].pop("PortBindings") == {}  # the SDK sends {}, dockerd reads it as none
        assert oneshot == expected
        assert "PortBindings" not in oneshot["HostConfig"] and "ExposedPorts" not in oneshot


def test_a_service_without_ports_sends_no_port_bindings():
    desired = spec.desired_state(params(tf_serving=dict(TF, ports=[])), SECRETS)["tf_serving"]
    assert "PortBindings" not in engine.host_config(desired) and engine.create_body(desired)["ExposedPorts"] == {}
