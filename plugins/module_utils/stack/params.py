# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ml_stack module's parameters: the argument spec (types, choices, defaults, no_log) and the
checks the spec cannot express. Kept in step with the module's DOCUMENTATION (ansible-test checks)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import re

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.errors import StackInputError

COMMON = dict(
    image=dict(type="str", required=True), env=dict(type="dict", default={}), ports=dict(type="list", elements="str"),
    volumes=dict(type="list", elements="str", default=[]), memory=dict(type="str"), cpus=dict(type="float"),
    shm_size=dict(type="str"), ulimits=dict(type="list", elements="str", default=[]),
    restart_policy=dict(type="str", choices=["no", "always", "unless-stopped", "on-failure"], default="unless-stopped"),
    log_driver=dict(type="str"), log_options=dict(type="dict"), healthcheck=dict(type="dict"),
    gpus=dict(type="list", elements="str", default=[]),
)
# One option set per service of services.TABLE, in its order.
SERVICE_OPTIONS = dict(
    postgres=dict(COMMON, user=dict(type="str", default="mlflow"), db=dict(type="str", default="mlflow"),
                  password=dict(type="str", no_log=True), data_volume=dict(type="str"), data_path=dict(type="str")),
    redis=dict(COMMON, password=dict(type="str", no_log=True), data_volume=dict(type="str"),
               appendonly=dict(type="bool", default=True)),
    mlflow=dict(COMMON, db_host=dict(type="str"),
                db_driver=dict(type="str", choices=["psycopg2", "psycopg"], default="psycopg2"), db_port=dict(type="int", default=5432),
                db_user=dict(type="str", default="mlflow"), db_name=dict(type="str", default="mlflow"),
                db_password=dict(type="str", no_log=True), db_password_version=dict(type="str", no_log=False), artifacts_volume=dict(type="str"),
                workers=dict(type="int", default=2), allowed_hosts=dict(type="list", elements="str", default=[]),
                basic_auth=dict(type="bool", default=False), admin_username=dict(type="str", default="admin"),
                admin_password=dict(type="str", no_log=True),
                default_permission=dict(type="str", choices=["READ", "EDIT", "MANAGE", "NO_PERMISSIONS"], default="READ"),
                metrics=dict(type="bool", default=False),
                artifacts_destination=dict(type="str"), s3_endpoint_url=dict(type="str"),
                s3_access_key_id=dict(type="str", no_log=True), s3_secret_access_key=dict(type="str", no_log=True)),
    tf_serving=dict(COMMON, model_name=dict(type="str"), gpu_image=dict(type="str"),
                    models=dict(type="list", elements="dict", options=dict(
                        name=dict(type="str", required=True), base_path=dict(type="str"),
                        version_policy=dict(type="dict", options=dict(latest=dict(type="int"), all=dict(type="bool"),
                                                                      specific=dict(type="list", elements="int"))),
                        version_labels=dict(type="dict"))),
                    models_volume=dict(type="str"), models_path=dict(type="path"),
                    config_poll_seconds=dict(type="int", default=30),
                    batching=dict(type="dict", options=dict(
                        max_batch_size=dict(type="int"), batch_timeout_micros=dict(type="int"),
                        max_enqueued_batches=dict(type="int"), num_batch_threads=dict(type="int"),
                        enable_large_batch_splitting=dict(type="bool"), max_execution_batch_size=dict(type="int"),
                        allowed_batch_sizes=dict(type="list", elements="int"), pad_variable_length_inputs=dict(type="bool"))),
                    extra_args=dict(type="list", elements="str", default=[]), metrics=dict(type="bool", default=False)),
)


def argument_spec():
    spec = dict(
        project=dict(type="str", default="mlstack"),
        state=dict(type="str", choices=["present", "stopped", "absent"], default="present"),
        purge_volumes=dict(type="bool", default=False),
        network=dict(type="str"),
        secrets_dir=dict(type="path", default="/etc/mlinfra"),
        pull=dict(type="str", choices=["missing", "always", "never"], default="missing"),
        registry_auth=dict(type="list", elements="dict", default=[], no_log=False, options=dict(
            registry=dict(type="str", required=True), username=dict(type="str", required=True),
            password=dict(type="str", required=True, no_log=True))),
        health_timeout=dict(type="int", default=300),
        pull_timeout=dict(type="int", default=1800),
        migration_timeout=dict(type="int", default=3600),
        docker_host=dict(type="str", default="unix:///var/run/docker.sock"),
        api_version=dict(type="str", default="auto"),
    )
    for service, options in SERVICE_OPTIONS.items():
        spec[service] = dict(type="dict", options=options)
    return spec


def check_params(params):
    """Validation the argument spec cannot express; raises StackInputError naming the parameter."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,40}", params["project"]):
        raise StackInputError("project: %r must be lower-case letters, digits, '.', '_' or '-' (at most 41)"
                              % params["project"])
    for name in ("health_timeout", "pull_timeout", "migration_timeout"):
        if params[name] < 1:
            raise StackInputError("%s must be at least 1 second, got %d" % (name, params[name]))
    tf = params.get("tf_serving")
    if tf and tf.get("models") and tf.get("model_name"):
        raise StackInputError("tf_serving: model_name and models are mutually exclusive")
    if tf and tf.get("models_path") and tf.get("models_volume"):
        raise StackInputError("tf_serving: models_path and models_volume are mutually exclusive")
    if params.get("mlflow"):
        check_s3(params["mlflow"])
    for service in SERVICE_OPTIONS:
        if params.get(service) and ":latest" in params[service]["image"]:
            raise StackInputError("%s.image: %r uses the 'latest' tag; pin a version" % (service, params[service]["image"]))


def registry_auths(params):
    """registry_auth as {registry: {username, password}}, the shape image pulls take."""
    return {a["registry"]: {"username": a["username"], "password": a["password"]} for a in params.get("registry_auth") or []}


S3_KEYS = ("s3_access_key_id", "s3_secret_access_key")


def check_s3(mlflow):
    """MLflow's S3 artifact store: s3://bucket[/prefix], an http(s) endpoint, both keys or neither (without
    keys boto3 finds credentials itself, e.g. an instance role), single-line keys (they go into a file)."""
    dest = mlflow.get("artifacts_destination")
    if dest is not None and not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?", dest):
        raise StackInputError("mlflow.artifacts_destination: %r is not s3://<bucket>[/<prefix>] (a bucket name has 3-63 "
                              "lower-case letters, digits, '.' or '-')" % dest)
    for name in ("s3_endpoint_url",) + S3_KEYS:
        if mlflow.get(name) is not None and dest is None:
            raise StackInputError("mlflow.%s is only used with mlflow.artifacts_destination (s3://...)" % name)
    url = mlflow.get("s3_endpoint_url")
    if url is not None and not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", url):
        raise StackInputError("mlflow.s3_endpoint_url: %r is not an http:// or https:// URL" % url)
    given = [name for name in S3_KEYS if mlflow.get(name) is not None]
    if len(given) == 1:
        raise StackInputError("mlflow.s3_access_key_id and mlflow.s3_secret_access_key go together; only %s was given" % given[0])
    for name in given:
        if not mlflow[name] or "\n" in mlflow[name] or "\r" in mlflow[name]:
            raise StackInputError("mlflow.%s must be a non-empty single line" % name)
