"""The desired-state builder, normalisation of docker inspect, and the diff (no Docker)."""

import copy

import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import compare, spec
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.errors import StackInputError

SECRETS = {"postgres_password": "pgpw", "redis_password": "rdpw", "mlflow_db_password": "pgpw",
           "mlflow_admin_password": "adminpw", "mlflow_secret_key": "key"}
COMMON = {"env": {}, "ports": None, "volumes": [], "memory": None, "cpus": None, "shm_size": None, "ulimits": [],
          "restart_policy": "unless-stopped", "log_driver": None, "log_options": None, "healthcheck": None, "gpus": []}


def params(**services):
    base = {"project": "mls", "network": None, "secrets_dir": "/etc/mlinfra", "postgres": None, "redis": None,
            "mlflow": None, "tf_serving": None}
    for name, extra in services.items():
        base[name] = dict(COMMON, **extra)
    return base


PG = {"image": "postgres:15.8", "user": "mlflow", "db": "mlflow", "memory": "2g"}
MLFLOW = {"image": "ghcr.io/mlflow/mlflow:v3.17.2-full", "db_port": 5432, "db_user": "mlflow", "db_name": "mlflow",
          "workers": 2, "allowed_hosts": ["tracking.example"], "basic_auth": False, "admin_username": "admin",
          "default_permission": "READ"}
TF = {"image": "tensorflow/serving:2.18.0", "model_name": "half_plus_two"}


def test_postgres_spec():
    pg = spec.desired_state(params(postgres=PG), SECRETS)["postgres"]
    assert pg["name"] == "mls-postgres" and pg["network"] == "mls" and pg["aliases"] == ["postgres"]
    assert pg["env"] == {"POSTGRES_USER": "mlflow", "POSTGRES_DB": "mlflow",
                         "POSTGRES_PASSWORD_FILE": "/run/secrets/postgres_password"}
    assert pg["ports"] == {"5432/tcp": [["127.0.0.1", "5432"]]}
    assert ["volume", "mls-postgres-data", "/var/lib/postgresql/data", False] in pg["mounts"]
    assert pg["memory"] == 2 * 1024 ** 3 and pg["restart_policy"] == {"Name": "unless-stopped", "MaximumRetryCount": 0}
    assert pg["healthcheck"]["Test"][1].startswith("pg_isready -q -h 127.0.0.1")
    assert pg["files"][0]["mode"] == 0o400 and pg["files"][0]["uid"] == 999
    assert "pgpw" not in str({k: v for k, v in pg.items() if k != "files"})


@pytest.mark.parametrize("image, env, data_path", [
    ("postgres:18.1", ["PG_MAJOR=18"], "/var/lib/postgresql"),
    ("pgvector/pgvector:pg18", ["PG_MAJOR=18"], "/var/lib/postgresql"),
    ("postgres@sha256:27b1" + "0" * 60, ["PG_MAJOR=15"], "/var/lib/postgresql/data"),
    ("postgres:18.1", [], "/var/lib/postgresql/data"),  # an image that does not say: the long-standing default
])
def test_postgres_data_dir_follows_the_image_pg_major_not_its_tag(image, env, data_path):
    images = {"postgres": {"Id": "sha256:x", "Config": {"Env": env}}}
    pg = spec.desired_state(params(postgres=dict(PG, image=image)), SECRETS, images=images)["postgres"]
    assert pg["data_path"] == data_path


def test_redis_password_only_in_its_file():
    redis = spec.desired_state(params(redis={"image": "redis:7.4.1", "appendonly": True}), SECRETS)["redis"]
    assert redis["command"] == ["redis-server", "/usr/local/etc/redis/redis.conf"]
    conf = redis["files"][0]
    assert "requirepass rdpw" in conf["content"] and "appendonly yes" in conf["content"] and conf["mode"] == 0o600
    assert "rdpw" not in str(redis["healthcheck"]) and "grep -q PONG" in redis["healthcheck"]["Test"][1]


def test_mlflow_local_db_and_flags():
    ml = spec.desired_state(params(postgres=PG, mlflow=MLFLOW), SECRETS)["mlflow"]
    cmd = ml["command"]
    assert cmd[cmd.index("--backend-store-uri") + 1] == "postgresql+psycopg2://mlflow@postgres:5432/mlflow"
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0" and "--serve-artifacts" in cmd
    assert "tracking.example:*" in cmd[cmd.index("--allowed-hosts") + 1]
    assert ml["env"]["PGPASSFILE"] == "/run/secrets/pgpass" and "pgpw" not in " ".join(cmd)
    assert ml["ports"] == {"5000/tcp": [["127.0.0.1", "5000"]]}


def test_mlflow_remote_db_needs_host():
    with pytest.raises(StackInputError, match="db_host"):
        spec.desired_state(params(mlflow=MLFLOW), SECRETS)
    ml = spec.desired_state(params(mlflow=dict(MLFLOW, db_host="10.0.0.11")), SECRETS)["mlflow"]
    assert "@10.0.0.11:5432/" in " ".join(ml["command"])


def test_mlflow_basic_auth():
    ml = spec.desired_state(params(postgres=PG, mlflow=dict(MLFLOW, basic_auth=True)),
                            dict(SECRETS, mlflow_secret_key="s3cr3t-flask-key"))["mlflow"]
    assert ml["command"][-2:] == ["--app-name", "basic-auth"]
    assert ml["command"][:2] == ["sh", "-c"] and ml["command"][3:5] == ["mlflow-server", "mlflow"]
    assert "MLFLOW_FLASK_SERVER_SECRET_KEY" not in ml["env"] and "s3cr3t-flask-key" not in " ".join(ml["command"])
    key = next(f for f in ml["files"] if f["path"].endswith("flask_secret_key"))
    assert key["content"] == "s3cr3t-flask-key\n" and key["mode"] == 0o600
    ini = next(f for f in ml["files"] if f["path"].endswith("basic_auth.ini"))
    assert "admin_password = adminpw" in ini["content"] and ini["mode"] == 0o600


def test_tf_serving_single_and_multi_model():
    one = spec.desired_state(params(tf_serving=TF), SECRETS)["tf_serving"]
    assert one["env"] == {"MODEL_NAME": "half_plus_two"} and one["probe"]["port"] == 8501
    assert [m["name"] for m in one["probe"]["models"]] == ["half_plus_two"] and one["probe"]["removed"] == []
    assert one["healthcheck"] is None and one["device_requests"] is None
    many = spec.desired_state(params(tf_serving={"image": "tensorflow/serving:2.18.0",
                                                 "models": [{"name": "a"}, {"name": "b", "base_path": "/m/b"}]}),
                              SECRETS)["tf_serving"]
    config = many["files"][0]["content"]
    assert 'name: "a"' in config and 'base_path: "/models/a"' in config and 'base_path: "/m/b"' in config
    assert many["command"][0] == "--model_config_file=/etc/tfserving/models.config"


@pytest.mark.parametrize("gpus, expected", [
    (["all"], [{"Driver": "nvidia", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": {}}]),
    (["0", "GPU-abc"], [{"Driver": "nvidia", "Count": 0, "DeviceIDs": ["0", "GPU-abc"], "Capabilities": [["gpu"]],
                         "Options": {}}]),
    ([], None),
])
def test_gpu_device_requests(gpus, expected):
    tf = spec.desired_state(params(tf_serving=dict(TF, gpus=gpus)), SECRETS)["tf_serving"]
    assert tf["device_requests"] == expected


@pytest.mark.parametrize("override, message", [
    ({"memory": "-1g"}, "postgres.memory"), ({"ports": ["99999:5432"]}, "postgres.ports"),
    ({"restart_policy": "sometimes"}, "postgres.restart_policy"), ({"env": {"A": ["x"]}}, "postgres.env.A"),
    ({"healthcheck": {"retries": 0}}, "postgres.healthcheck.retries"), ({"volumes": ["data"]}, "postgres.volumes"),
    ({"gpus": ["all", "0"]}, "postgres.gpus"), ({"image": ""}, "postgres.image"),
])
def test_bad_input_names_the_parameter(override, message):
    with pytest.raises(StackInputError, match=message):
        spec.desired_state(params(postgres=dict(PG, **override)), SECRETS)


def test_config_hash_follows_runtime_file_contents():
    first = spec.desired_state(params(redis={"image": "redis:7"}), SECRETS)["redis"]
    second = spec.desired_state(params(redis={"image": "redis:7"}), dict(SECRETS, redis_password="other"))["redis"]
    assert first["labels"][spec.LABEL_HASH] != second["labels"][spec.LABEL_HASH]


def inspect_for(desired, image_env=("PATH=/usr/bin",)):
    """What Docker would report for a container created from `desired`."""
    return {
        "Name": "/" + desired["name"], "Image": "sha256:img",
        "Config": {"Cmd": desired["command"] or ["postgres"], "Env": list(image_env) + ["%s=%s" % kv for kv in desired["env"].items()],
                   "Labels": dict(desired["labels"], maintainer="someone"), "Healthcheck": copy.deepcopy(desired["healthcheck"])},
        "HostConfig": {"PortBindings": {p: [{"HostIp": ip, "HostPort": hp} for ip, hp in b] for p, b in desired["ports"].items()},
                       "Mounts": [{"Type": t, "Source": s, "Target": d, "ReadOnly": ro} for t, s, d, ro in desired["mounts"]],
                       "Memory": desired["memory"] or 0, "NanoCpus": 0, "ShmSize": desired["shm_size"] or 67108864,
                       "Ulimits": [{"Name": "nofile", "Soft": 64000, "Hard": 64000}],
                       "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
                       "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}},
                       "DeviceRequests": None},
        "NetworkSettings": {"Networks": {desired["network"]: {"NetworkID": "net1", "Aliases": desired["aliases"] + ["abc123"]}}},
        "State": {"Status": "running", "Health": {"Status": "healthy"}},
    }


IMAGE = {"Id": "sha256:img", "Config": {"Env": ["PATH=/usr/bin"], "Cmd": ["postgres"], "Labels": {"maintainer": "someone"}}}


def test_no_differences_after_normalising_docker_defaults():
    pg = spec.desired_state(params(postgres=PG), SECRETS)["postgres"]
    actual = compare.actual_state(inspect_for(pg))
    assert compare.differences(pg, actual, IMAGE, "net1") == []
    assert compare.action_for([], actual["status"], "present") is None


@pytest.mark.parametrize("mutate, field, how", [
    (lambda i: i["Config"]["Env"].append("EXTRA=1"), "env", "recreate"),
    (lambda i: i.update(Image="sha256:old"), "image", "recreate"),
    (lambda i: i["HostConfig"].update(Memory=1024), "memory", "update"),
    (lambda i: i["HostConfig"].update(RestartPolicy={"Name": "always", "MaximumRetryCount": 0}), "restart_policy", "update"),
    (lambda i: i["HostConfig"]["PortBindings"]["5432/tcp"][0].update(HostIp="0.0.0.0"), "ports", "recreate"),
    (lambda i: i["NetworkSettings"]["Networks"]["mls"].update(NetworkID="net-old"), "network", "recreate"),
    (lambda i: i["Config"]["Healthcheck"].update(Interval=1), "healthcheck", "recreate"),
    (lambda i: i["Config"]["Labels"].update({spec.LABEL_HASH: "stale"}), "labels", "recreate"),
])
def test_each_drift_is_found_with_the_right_remedy(mutate, field, how):
    pg = spec.desired_state(params(postgres=PG), SECRETS)["postgres"]
    raw = inspect_for(pg)
    mutate(raw)
    diffs = compare.differences(pg, compare.actual_state(raw), IMAGE, "net1")
    assert [(d[0], d[3]) for d in diffs] == [(field, how)]


def test_stopped_container_is_started_and_update_beats_start():
    assert compare.action_for([], "exited", "present") == "start"
    assert compare.action_for([("memory", 1, 2, "update")], "running", "present") == "update"
    assert compare.action_for([], "running", "stopped") == "stop"
    assert compare.action_for([("env", {}, {"A": "1"}, "recreate")], "exited", "stopped") == "recreate"


def test_diff_view_masks_secret_env():
    view = compare.diff_view("mlflow", [("env", {"MLFLOW_FLASK_SERVER_SECRET_KEY": "old", "A": "1"},
                                         {"MLFLOW_FLASK_SERVER_SECRET_KEY": "new", "A": "2"}, "recreate")])
    assert view["before"]["env"] == {"MLFLOW_FLASK_SERVER_SECRET_KEY": "********", "A": "1"}
    assert "new" not in str(view)


def test_image_env_and_cmd_count_as_expected():
    redis = spec.desired_state(params(redis={"image": "redis:7"}), SECRETS)["redis"]
    raw = inspect_for(redis, image_env=("PATH=/usr/bin", "REDIS_VERSION=7.4.1"))
    image = copy.deepcopy(IMAGE)
    image["Config"]["Env"].append("REDIS_VERSION=7.4.1")
    assert compare.differences(redis, compare.actual_state(raw), image, "net1") == []


GPU_HOST = {"count": 2, "gpus": [{"index": 0, "uuid": "GPU-aaaa"}, {"index": 1, "uuid": "GPU-bbbb"}]}
CPU_HOST = {"count": 0, "gpus": [], "reason": "the NVIDIA kernel driver is not loaded"}
TF_GPU = dict(TF, image="tensorflow/serving:2.18.0", gpu_image="tensorflow/serving:2.18.0-gpu")


def test_gpu_host_gets_gpu_image_and_all_devices():
    tf = spec.desired_state(params(tf_serving=dict(TF_GPU, gpus=["auto"])), SECRETS, GPU_HOST)["tf_serving"]
    assert tf["image"] == "tensorflow/serving:2.18.0-gpu"
    assert tf["device_requests"][0]["Count"] == -1 and tf["device_requests"][0]["Driver"] == "nvidia"


def test_gpu_host_with_selected_uuids():
    tf = spec.desired_state(params(tf_serving=dict(TF_GPU, gpus=["GPU-bbbb"])), SECRETS, GPU_HOST)["tf_serving"]
    assert tf["image"].endswith("-gpu") and tf["device_requests"][0]["DeviceIDs"] == ["GPU-bbbb"]


@pytest.mark.parametrize("facts", [CPU_HOST, None])
def test_cpu_host_gets_neither(facts):
    tf = spec.desired_state(params(tf_serving=dict(TF_GPU, gpus=["auto"])), SECRETS, facts)["tf_serving"]
    assert tf["image"] == "tensorflow/serving:2.18.0" and tf["device_requests"] is None


def test_auto_cannot_mix():
    with pytest.raises(StackInputError, match="auto"):
        spec.desired_state(params(tf_serving=dict(TF_GPU, gpus=["auto", "0"])), SECRETS, GPU_HOST)


@pytest.mark.parametrize("facts, expected", [
    (None, []),
    ({"count": 0, "gpus": [], "failed_gpus": []}, []),
    ({"count": 2, "gpus": [{"uuid": "GPU-a"}, {"uuid": "GPU-b"}], "failed_gpus": []}, ["all"]),
    # one of three GPUs lost: never request it (a device request for 'all' would include it and fail the start)
    ({"count": 2, "gpus": [{"uuid": "GPU-a"}, {"uuid": "GPU-c"}], "failed_gpus": [{"index": 1, "error": "GpuIsLost"}]},
     ["GPU-a", "GPU-c"]),
    ({"count": 0, "gpus": [], "failed_gpus": [{"index": 0, "error": "GpuIsLost"}]}, []),
])
def test_auto_gpus_are_the_usable_ones(facts, expected):
    assert spec.resolve_gpus(["auto"], facts) == expected


def test_metrics_are_opt_in_and_exposed_where_prometheus_looks():
    plain = spec.desired_state(params(postgres=PG, mlflow=MLFLOW, tf_serving=TF), SECRETS)
    assert "--expose-prometheus" not in plain["mlflow"]["command"] and plain["tf_serving"]["command"] is None
    on = spec.desired_state(params(postgres=PG, mlflow=dict(MLFLOW, metrics=True), tf_serving=dict(TF, metrics=True)),
                            SECRETS)
    command = on["mlflow"]["command"]
    assert command[command.index("--expose-prometheus") + 1] == "/mlflow-metrics"
    tfs = on["tf_serving"]
    assert tfs["command"] == ["--monitoring_config_file=/etc/tfserving/monitoring.config"]
    config = next(f for f in tfs["files"] if f["path"].endswith("/monitoring.config"))
    assert config["content"] == 'prometheus_config {\n  enable: true\n  path: "/monitoring/prometheus/metrics"\n}\n'
    # the directory is mounted, not the file: a replaced file would not reach a single-file bind mount
    assert config["path"] == "/etc/mlinfra/mls/runtime/tf_serving/monitoring.config"
    assert ["bind", "/etc/mlinfra/mls/runtime/tf_serving", "/etc/tfserving", True] in tfs["mounts"]
    assert tfs["env"] == {"MODEL_NAME": "half_plus_two"}  # still the single-model entry point


def test_metrics_with_basic_auth_keep_the_flask_key_wrapper_outermost():
    ml = spec.desired_state(params(postgres=PG, mlflow=dict(MLFLOW, metrics=True, basic_auth=True)), SECRETS)["mlflow"]
    assert ml["command"][:2] == ["sh", "-c"] and "--expose-prometheus" in ml["command"]
