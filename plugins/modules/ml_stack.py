#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
---
module: ml_stack
short_description: Postgres, Redis, MLflow and TF Serving as health-gated containers, in one call per host
version_added: 0.1.0
description:
  - Brings the ML services enabled on this host (any subset of O(postgres), O(redis), O(mlflow), O(tf_serving))
    to the declared state on a private bridge network with named volumes, in dependency order
    (postgres and redis, then mlflow, then tf_serving), and waits until each phase is healthy, all
    services of a phase at once, within one bounded O(health_timeout).
  - Compares only the fields it sets against C(docker inspect), normalising Docker's defaults (the
    image's env and labels, an unset command, durations). A container is recreated only when a field
    that needs it differs; memory, CPUs and restart policy change in place; a stopped container is started.
  - A container whose health checks stopped running after dockerd restarted (still C(starting), no probe
    logged for three intervals; moby#41871) is restarted. A container that restarts three times while the
    module waits for it is reported as crash-looping at once, with its last log lines.
  - Before anything is written or created, every image is pulled (each bounded by O(pull_timeout)) and
    checked, and so are the Postgres data volume and the host ports of new containers; a refused run
    leaves the host as it was. A data volume holding a cluster of another major than the image's
    C(PG_MAJOR) (root, C(data/) or C(<major>/docker/)) is refused; the data path follows C(PG_MAJOR).
  - Secrets (Postgres, Redis and MLflow admin passwords, MLflow's Flask key) are generated once when not
    given, stored under O(secrets_dir)/<project>/ (0600 root) and handed to containers as files, never in
    their Env or module output. A changed Postgres or MLflow admin password is set in the running server
    (C(ALTER ROLE), MLflow's user API) and checked before it is stored; without a running server it is refused.
  - MLflow uses the Postgres backend (a pgpass file) and serves artifacts from a named volume, or from S3 or an
    S3-compatible store (O(mlflow.artifacts_destination), keys in a credentials file). Whenever
    its server is created or started from stopped, a one-shot container runs C(mlflow db upgrade) on an existing schema first,
    bounded by O(migration_timeout) and never killed half-way.
  - Talks to the Docker Engine API itself, with Python's standard library only (no Docker SDK on the host),
    so a no-op run costs less than importing the SDK alone used to.
author:
  - mlinfra contributors (@mlinfra)
extends_documentation_fragment:
  - mlinfra.docker_ml.ml_stack_run
  - mlinfra.docker_ml.ml_stack_services
requirements:
  - Docker Engine API 1.41 or later (Docker 20.10+) on the managed host; nothing to install in Python
attributes:
  check_mode:
    support: full
    description: Returns the planned action per service and touches nothing.
  diff_mode:
    support: full
    description: Per service, the fields that differ, before and after (secret values masked).
  platform:
    platforms: posix
    support: full
    description: Linux hosts with Docker Engine.
seealso:
  - module: mlinfra.docker_ml.docker_engine
"""

EXAMPLES = r"""
- name: The whole stack on one host
  mlinfra.docker_ml.ml_stack:
    project: mlstack
    postgres: {image: "postgres:15.8", memory: 2g}
    redis: {image: "redis:7.4.1", memory: 1g}
    mlflow: {image: "ghcr.io/mlflow/mlflow:v3.17.2-full", memory: 2g}
    tf_serving: {image: "tensorflow/serving:2.18.0", model_name: half_plus_two, memory: 4g}

- name: MLflow on its own host, Postgres elsewhere
  mlinfra.docker_ml.ml_stack:
    mlflow:
      image: ghcr.io/mlflow/mlflow:v3.17.2-full
      db_host: 10.0.0.11
      db_password: "{{ postgres_password }}"
      allowed_hosts: [mlflow.example.com]
      basic_auth: true

- name: MLflow with artifacts in an S3-compatible store
  mlinfra.docker_ml.ml_stack:
    mlflow:
      image: ghcr.io/mlflow/mlflow:v3.17.2-full
      db_host: 10.0.0.11
      db_password: "{{ postgres_password }}"
      artifacts_destination: s3://mlflow-artifacts/team-a
      s3_endpoint_url: http://minio.internal:9000
      s3_access_key_id: "{{ s3_key_id }}"
      s3_secret_access_key: "{{ s3_secret }}"

- name: TF Serving with two models, version policies, labels and batching
  mlinfra.docker_ml.ml_stack:
    tf_serving:
      image: tensorflow/serving:2.18.0
      models_path: /srv/models
      config_poll_seconds: 30
      models:
        - name: ranker
          version_policy: {specific: [1, 2]}
          version_labels: {stable: 1, canary: 2}
        - name: embedder
          version_policy: {latest: 2}
      batching: {max_batch_size: 32, batch_timeout_micros: 2000, num_batch_threads: 4, allowed_batch_sizes: [8, 16, 32]}

- name: Remove the stack but keep its data
  mlinfra.docker_ml.ml_stack:
    state: absent
    postgres: {image: "postgres:15.8"}
"""

RETURN = r"""
services:
  description:
    - Per service on this host, what was done and what runs now.
    - C(tf_serving.reloaded=true) means models.config was rewritten under a kept container and the running server
      re-read it (no new container); the run waited until the models matched it (check mode - it would be).
  returned: always
  type: dict
  sample:
    postgres: {action: null, changed_fields: [], pulled: false, container: mlstack-postgres, id: 3f2c..., image_id: "sha256:9b1c...",
               status: running, health: healthy, endpoints: {"5432/tcp": ["127.0.0.1:5432"]}}
    mlflow: {action: recreate, changed_fields: [image], migration: ["INFO  [alembic] ..."], status: running, health: healthy}
    tf_serving: {action: null, reloaded: true, changed_fields: [], status: running, health: "models available"}
host_changes:
  description: Secrets, runtime files, networks and volumes created, changed or removed (paths and names only; C(<path> (removed))).
  returned: always
  type: list
  elements: str
  sample: ["/etc/mlinfra/mlstack/postgres_password", "network mlstack", "volume mlstack-postgres-data",
           "postgres password rotated in the running server"]
ansible_facts:
  description: Facts for other hosts' runs.
  returned: always
  type: dict
  contains:
    mlinfra_postgres_password_version:
      description:
        - On a host with postgres, the version of its stored password file (a digest of the file's identity, not of
          the password; C(pending) in check mode when a real run would write it). A remote MLflow host given it as
          O(mlflow.db_password_version) uses the copy of the password it keeps, without reading this host.
      returned: when postgres is configured and state is not absent
      type: str
      sample: 3f9a0c1d2b4e5f60
db_password_needed:
  description:
    - True when the run stopped before doing anything because it needs O(mlflow.db_password) (the copy kept on this
      host is missing or does not match O(mlflow.db_password_version)). The role reads it from the database host and
      runs the module again.
  returned: when true
  type: bool
  sample: true
api_requests:
  description: Docker API requests this run made (for the benchmark).
  returned: always
  type: int
  sample: 9
"""

import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import MlinfraError, failure_message
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import engine as stack_engine
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.converge import Converger
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.params import SERVICE_OPTIONS, argument_spec, check_params


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_one_of=[list(SERVICE_OPTIONS)])
    params = dict(module.params)
    try:
        check_params(params)
        converger = Converger(stack_engine.Engine(params["docker_host"], params["api_version"]), params,
                              module.check_mode)
        result = converger.run()
    except MlinfraError as exc:
        module.fail_json(msg=failure_message("ml_stack", exc), **exc.extra)
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg=failure_message("ml_stack", "unexpected error: %s" % exc), exception=traceback.format_exc())
    for warning in result.pop("warnings"):
        module.warn(failure_message("ml_stack", warning))
    diffs = result.pop("diff")
    if module._diff and diffs:  # pylint: disable=protected-access
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
