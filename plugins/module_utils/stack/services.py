# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack's services: the table of them (name, phase, builder) and what each one needs beyond the common
fields: command, env, mounts, runtime files, health (pure). Each builder takes the service's parameters and a
context and returns a partial spec."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import re

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import tf_models
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.errors import StackInputError
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.units import duration_ns

SERVICE_UID = 999  # the official postgres and redis images run their server as uid/gid 999
MLFLOW_PORT = 5000


def _check(test, interval="5s", timeout="5s", retries=10, start_period="60s"):
    return {"Test": test, "Interval": duration_ns(interval, "interval"), "Timeout": duration_ns(timeout, "timeout"),
            "Retries": retries, "StartPeriod": duration_ns(start_period, "start_period")}


def _file(ctx, name, content, mode, uid=0):
    return {"path": "%s/%s" % (ctx["runtime_dir"], name), "content": content, "mode": mode, "uid": uid, "gid": uid}


def container_name(project, service):
    return "%s-%s" % (project, service.replace("_", "-"))


def _name(ctx, service):
    return container_name(ctx["project"], service)


def pg_major(image_env):
    """The PostgreSQL major of an image from its PG_MAJOR env (every official and derived postgres image
    sets it); None when unknown. Never from the tag: digests and tags like `pgvector:pg18` lie."""
    match = re.match(r"(\d+)", str((image_env or {}).get("PG_MAJOR") or ""))
    return int(match.group(1)) if match else None


def pg_data_path(major):
    """Where the volume is mounted: the official image moved PGDATA's parent to /var/lib/postgresql from
    major 18 on (PGDATA=/var/lib/postgresql/<major>/docker)."""
    return "/var/lib/postgresql" if major and major >= 18 else "/var/lib/postgresql/data"


def postgres(p, ctx):
    data_path = p.get("data_path") or pg_data_path(None)  # until spec.settle reads the image's PG_MAJOR
    secret = _file(ctx, "postgres_password", ctx["secrets"]["postgres_password"], 0o400, SERVICE_UID)
    return {
        "env": {"POSTGRES_USER": p["user"], "POSTGRES_DB": p["db"],
                "POSTGRES_PASSWORD_FILE": "/run/secrets/postgres_password"},
        "ports": ["127.0.0.1:5432:5432"],
        "mounts": [["volume", p.get("data_volume") or "%s-data" % _name(ctx, "postgres"), data_path, False],
                   ["bind", secret["path"], "/run/secrets/postgres_password", True]],
        "files": [secret],
        # Socket-only readiness lies during initdb: ask over TCP.
        "healthcheck": _check(["CMD-SHELL", "pg_isready -q -h 127.0.0.1 -p 5432 -U %s -d %s" % (p["user"], p["db"])]),
        "data_path": data_path,
    }


REDIS_CONF_PATH = "/usr/local/etc/redis/redis.conf"


def redis(p, ctx):
    conf = "\n".join([
        "# Managed by mlinfra.docker_ml",
        "bind 0.0.0.0",
        "protected-mode no",
        "requirepass %s" % ctx["secrets"]["redis_password"],
        "appendonly %s" % ("yes" if p.get("appendonly", True) else "no"),
        "dir /data",
    ]) + "\n"
    config = _file(ctx, "redis.conf", conf, 0o600, SERVICE_UID)
    # redis-cli exits 0 on NOAUTH: look for PONG, with the password from the config, not the command line.
    probe = ("REDISCLI_AUTH=\"$(sed -n 's/^requirepass //p' %s)\" redis-cli -h 127.0.0.1 ping | grep -q PONG"
             % REDIS_CONF_PATH)
    return {
        "command": ["redis-server", REDIS_CONF_PATH],
        "ports": ["127.0.0.1:6379:6379"],
        "mounts": [["volume", p.get("data_volume") or "%s-data" % _name(ctx, "redis"), "/data", False],
                   ["bind", config["path"], REDIS_CONF_PATH, True]],
        "files": [config],
        "healthcheck": _check(["CMD-SHELL", probe], start_period="20s"),
    }


def mlflow_db_uri(p, ctx):
    host = p.get("db_host") or ("postgres" if "postgres" in ctx["enabled"] else None)
    if not host:
        raise StackInputError("mlflow.db_host is required when postgres does not run on this host")
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3: name the driver the image really has.
    return "postgresql+%s://%s@%s:%d/%s" % (p.get("db_driver") or "psycopg2", p["db_user"], host, p["db_port"],
                                            p["db_name"])


def _s3_store(p, ctx):
    """An S3 artifact store: the endpoint in the env (not a secret), the keys in an AWS shared credentials
    file that boto3 reads through AWS_SHARED_CREDENTIALS_FILE (never in Env or on the command line)."""
    if not p.get("artifacts_destination"):
        return {}, []
    env = {"MLFLOW_S3_ENDPOINT_URL": p["s3_endpoint_url"]} if p.get("s3_endpoint_url") else {}
    if p.get("s3_access_key_id") is None:
        return env, []
    env["AWS_SHARED_CREDENTIALS_FILE"] = "/run/secrets/aws_credentials"
    return env, [_file(ctx, "aws_credentials", "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                       % (p["s3_access_key_id"], p["s3_secret_access_key"]), 0o600)]


def mlflow(p, ctx):
    password = ctx["secrets"]["mlflow_db_password"]  # a given one was checked by secrets.check_given
    pgpass = _file(ctx, "pgpass", "*:*:*:%s:%s\n" % (p["db_user"], password), 0o600)
    allowed = ["127.0.0.1:*", "localhost:*", "mlflow:*", "%s:*" % _name(ctx, "mlflow")]
    allowed += ["%s:*" % h if ":" not in h else h for h in p.get("allowed_hosts") or []]
    command = ["mlflow", "server", "--backend-store-uri", mlflow_db_uri(p, ctx), "--serve-artifacts",
               "--artifacts-destination", p.get("artifacts_destination") or "/mlartifacts", "--host", "0.0.0.0",
               "--port", str(MLFLOW_PORT), "--workers", str(p["workers"]), "--allowed-hosts", ",".join(dict.fromkeys(allowed))]
    if p.get("metrics"):  # Prometheus metrics at /metrics on the server's own port (the dir holds multiprocess data)
        command += ["--expose-prometheus", "/mlflow-metrics"]
    env = {"PGPASSFILE": "/run/secrets/pgpass"}
    mounts = [["volume", p.get("artifacts_volume") or "%s-artifacts" % _name(ctx, "mlflow"), "/mlartifacts", False],
              ["bind", pgpass["path"], "/run/secrets/pgpass", True]]
    files = [pgpass]
    s3_env, s3_files = _s3_store(p, ctx)
    env.update(s3_env)
    files += s3_files
    mounts += [["bind", f["path"], "/run/secrets/aws_credentials", True] for f in s3_files]
    if p.get("basic_auth"):
        ini = _file(ctx, "basic_auth.ini", "\n".join([
            "[mlflow]",
            "default_permission = %s" % p["default_permission"],
            "database_uri = sqlite:////mlflow-auth/basic_auth.db",
            "admin_username = %s" % p["admin_username"],
            "admin_password = %s" % ctx["secrets"]["mlflow_admin_password"],
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
        ]) + "\n", 0o600)
        key = _file(ctx, "flask_secret_key", ctx["secrets"]["mlflow_secret_key"] + "\n", 0o600)
        files += [ini, key]
        command += ["--app-name", "basic-auth"]
        # MLflow reads its Flask secret only from the environment: export it from the file at start, so
        # that it is never in the container's configuration (docker inspect shows Env to anyone with the socket).
        command = ["sh", "-c", 'MLFLOW_FLASK_SERVER_SECRET_KEY="$(cat /run/secrets/flask_secret_key)"; '
                   'export MLFLOW_FLASK_SERVER_SECRET_KEY; exec "$@"', "mlflow-server"] + command
        env["MLFLOW_AUTH_CONFIG_PATH"] = "/run/secrets/basic_auth.ini"
        mounts += [["volume", "%s-auth" % _name(ctx, "mlflow"), "/mlflow-auth", False],
                   ["bind", ini["path"], "/run/secrets/basic_auth.ini", True],
                   ["bind", key["path"], "/run/secrets/flask_secret_key", True]]
    # The image has no curl: ask /health with its own Python.
    probe = ("import http.client as h, sys; c = h.HTTPConnection('127.0.0.1', %d, timeout=4); c.request('GET', '/health'); "
             "sys.exit(0 if c.getresponse().status == 200 else 1)" % MLFLOW_PORT)
    return {"command": command, "env": env, "ports": ["127.0.0.1:%d:%d" % (MLFLOW_PORT, MLFLOW_PORT)],
            "db_uri": mlflow_db_uri(p, ctx), "mounts": mounts, "files": files, "healthcheck": _check(["CMD", "python", "-c", probe], start_period="120s")}


TF_SERVING_METRICS_PATH = "/monitoring/prometheus/metrics"
TF_SERVING_CONFIG_DIR = "/etc/tfserving"


def tf_serving(p, ctx):
    """TF Serving: one model by MODEL_NAME, or several from a models.config (version policies and labels) that the
    server re-reads every config_poll_seconds. Its files live in their own directory, bind-mounted whole: a single-file
    bind mount keeps the inode it was given, so an atomically replaced models.config would never reach the server."""
    models = tf_models.models(p.get("models"), p.get("model_name"))
    if p.get("models_path"):
        models_mount = ["bind", p["models_path"], "/models", True]
    else:
        models_mount = ["volume", p.get("models_volume") or "%s-models" % _name(ctx, "tf_serving"), "/models", True]
    config_dir = "%s/tf_serving" % ctx["runtime_dir"]
    poll = p.get("config_poll_seconds")
    poll = 30 if poll is None else poll
    if poll < 0:
        raise StackInputError("tf_serving.config_poll_seconds: %r must be 0 (read once) or more seconds" % poll)
    live = bool(p.get("models")) and poll > 0
    built = {"ports": ["127.0.0.1:8501:8501", "127.0.0.1:8500:8500"], "mounts": [models_mount], "files": [],
             # The CPU image has no curl, wget or python: health is asked from the host over REST.
             "healthcheck": None,
             "probe": {"port": 8501, "models": models, "removed": [],
                       "models_dir": p.get("models_path") if ctx.get("local", True) else None}}
    flags = []

    def add_file(name, content, live=False):
        item = dict(_file({"runtime_dir": config_dir}, name, content, 0o644), live=live)
        built["files"].append(item)
        return "%s/%s" % (TF_SERVING_CONFIG_DIR, name)

    if p.get("metrics"):  # served on the REST port only (the HTTP server that registers the page)
        flags.append("--monitoring_config_file=%s" % add_file(
            "monitoring.config", 'prometheus_config {\n  enable: true\n  path: "%s"\n}\n' % TF_SERVING_METRICS_PATH))
    batching = tf_models.batching(p.get("batching"))
    if batching is not None:  # upstream refuses a parameters file without --enable_batching (server.cc)
        flags += ["--enable_batching=true", "--batching_parameters_file=%s" % add_file("batching.config", batching)]
    if not p.get("models"):
        built["env"] = {"MODEL_NAME": models[0]["name"]}
        built["command"] = flags + list(p.get("extra_args") or []) or None
    else:
        path = add_file("models.config", tf_models.models_config(models), live=live)
        # Labels may name a version that is not loaded yet only with this flag (server_core.cc
        # UpdateModelVersionLabelMap): without it every label in the first config fails the server's start. Always
        # set with a models.config, so that adding the first label later needs no new container.
        built["command"] = ["--model_config_file=%s" % path, "--model_config_file_poll_wait_seconds=%d" % poll,
                            "--allow_version_labels_for_unavailable_models=true"] + flags + list(p.get("extra_args") or [])
    if built["files"]:
        built["mounts"].append(["bind", config_dir, TF_SERVING_CONFIG_DIR, True])
    return built


# The service table, in dependency order: (name, phase, builder, secrets, runtime files). Each phase is converged
# and health-gated before the next one starts; the module's options per service are params.SERVICE_OPTIONS, keyed
# the same. A secret is (its name in secrets_dir, the option that may give it or None, the boolean option it
# needs or None): generated once when not given, stored 0600, handed over as a file. Runtime files are every
# file the builder may write into the runtime directory: one the desired state no longer has is removed.
TABLE = (
    ("postgres", 0, postgres, (("postgres_password", "password", None),), ("postgres_password",)),
    ("redis", 0, redis, (("redis_password", "password", None),), ("redis.conf",)),
    ("mlflow", 1, mlflow, (("mlflow_db_password", "db_password", None), ("mlflow_admin_password", "admin_password", "basic_auth"),
                           ("mlflow_secret_key", None, "basic_auth")),
     ("pgpass", "aws_credentials", "basic_auth.ini", "flask_secret_key")),
    # tf_serving's files live in runtime/tf_serving/; the two at the top are where releases before it kept them.
    ("tf_serving", 2, tf_serving, (), ("tf_serving/models.config", "tf_serving/monitoring.config", "tf_serving/batching.config",
                                       "models.config", "monitoring.config")),
)
NAMES = tuple(row[0] for row in TABLE)
PHASES = tuple(tuple(row[0] for row in TABLE if row[1] == number) for number in sorted({row[1] for row in TABLE}))
BUILDERS = {row[0]: row[2] for row in TABLE}
SECRETS = {row[0]: row[3] for row in TABLE}
RUNTIME_FILES = {row[0]: row[4] for row in TABLE}
