"""The service table: one list of services; options, phases and builders all follow it."""

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import compare, engine, services
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.params import SERVICE_OPTIONS


def test_options_phases_and_builders_follow_the_table():
    assert tuple(SERVICE_OPTIONS) == services.NAMES == ("postgres", "redis", "mlflow", "tf_serving")
    assert services.PHASES == (("postgres", "redis"), ("mlflow",), ("tf_serving",))
    assert services.BUILDERS["tf_serving"] is services.tf_serving
    assert services.container_name("mlstack", "tf_serving") == "mlstack-tf-serving"


def test_one_normaliser_for_device_requests_and_memory():
    wanted = [{"Driver": "nvidia", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": {}}]
    assert engine.host_config({"ports": {}, "mounts": [], "ulimits": [], "memory": 1024, "nano_cpus": None, "shm_size": None,
                               "restart_policy": None, "log_config": None, "device_requests": wanted}) == {
        "NetworkMode": "default", "Mounts": [], "Ulimits": [], "Memory": 1024, "MemorySwap": -1,
        "DeviceRequests": compare.device_requests(wanted)}
    assert compare.memory_limits(None) == {"Memory": None, "MemorySwap": None}
    assert compare.device_requests(wanted)[0]["DeviceIDs"] == []
