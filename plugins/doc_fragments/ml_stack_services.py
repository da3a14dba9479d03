# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name


class ModuleDocFragment(object):  # pylint: disable=too-few-public-methods
    """The ml_stack module's per-service options (postgres, redis, mlflow, tf_serving), in one document so that
    the container options they share are written once (YAML anchors)."""

    DOCUMENTATION = r"""
options:
  postgres:
    description: Run Postgres on this host (the MLflow backend store). Omit to not run it here.
    type: dict
    suboptions:
      image: &c_image
        description: Image reference. Pin a tag; never C(latest).
        type: str
        required: true
      env: &c_env
        description: Extra environment variables.
        type: dict
        default: {}
      ports: &c_ports
        description:
          - Port bindings C([ip:]host_port:container_port[/proto]). Without an IP the port is bound to 127.0.0.1;
            give C(0.0.0.0:...) or another address to open it on purpose. Omit for the service's default
            (loopback only); an empty list publishes nothing.
        type: list
        elements: str
      volumes: &c_volumes
        description: Extra mounts C(source:/container/path[:ro]); a source starting with / is a bind mount.
        type: list
        elements: str
        default: []
      memory: &c_memory
        description: Memory limit, e.g. C(2g). Changed in place.
        type: str
      cpus: &c_cpus
        description: CPU limit, e.g. C(1.5). Changed in place.
        type: float
      shm_size: &c_shm_size
        description: Size of /dev/shm, e.g. C(256m).
        type: str
      ulimits: &c_ulimits
        description: Limits C(name=soft[:hard]), e.g. C(nofile=65536:65536).
        type: list
        elements: str
        default: []
      restart_policy: &c_restart_policy
        description: Restart policy. Changed in place.
        type: str
        choices: ["no", always, unless-stopped, on-failure]
        default: unless-stopped
      log_driver: &c_log_driver
        description: Logging driver; unset uses the daemon's.
        type: str
      log_options: &c_log_options
        description: Logging driver options.
        type: dict
      healthcheck: &c_healthcheck
        description: Override the built-in health check (keys test, interval, timeout, retries, start_period) or C({disable = true}).
        type: dict
      gpus: &c_gpus
        description:
          - GPUs to request - C([all]), device indices or UUIDs, or C([auto]) for every GPU NVML finds on the
            host (none on a CPU host). Empty for none.
        type: list
        elements: str
        default: []
      user:
        description: Database user created on first start.
        type: str
        default: mlflow
      db:
        description: Database created on first start.
        type: str
        default: mlflow
      password:
        description: The database password; generated and stored when omitted. A change is set in the running server.
        type: str
      data_volume:
        description: Named volume for the data directory; defaults to <project>-postgres-data.
        type: str
      data_path:
        description: Where the data volume is mounted; defaults to the official image's for the image's C(PG_MAJOR).
        type: str
  redis:
    description: Run Redis (password required, append-only persistence) on this host.
    type: dict
    suboptions:
      image: *c_image
      env: *c_env
      ports: *c_ports
      volumes: *c_volumes
      memory: *c_memory
      cpus: *c_cpus
      shm_size: *c_shm_size
      ulimits: *c_ulimits
      restart_policy: *c_restart_policy
      log_driver: *c_log_driver
      log_options: *c_log_options
      healthcheck: *c_healthcheck
      gpus: *c_gpus
      password:
        description: The Redis password; generated and stored on the host when omitted.
        type: str
      data_volume:
        description: Named volume for /data; defaults to <project>-redis-data.
        type: str
      appendonly:
        description: Append-only-file persistence.
        type: bool
        default: true
  mlflow:
    description: Run the MLflow tracking server (Postgres backend, artifacts served from a volume) on this host.
    type: dict
    suboptions:
      image: *c_image
      env: *c_env
      ports: *c_ports
      volumes: *c_volumes
      memory: *c_memory
      cpus: *c_cpus
      shm_size: *c_shm_size
      ulimits: *c_ulimits
      restart_policy: *c_restart_policy
      log_driver: *c_log_driver
      log_options: *c_log_options
      healthcheck: *c_healthcheck
      gpus: *c_gpus
      db_host:
        description: Where Postgres listens; defaults to the postgres container when it runs on this host.
        type: str
      db_driver:
        description: The SQLAlchemy Postgres driver installed in the MLflow image.
        type: str
        choices: [psycopg2, psycopg]
        default: psycopg2
      db_port:
        description: Postgres port.
        type: int
        default: 5432
      db_user:
        description: Postgres user.
        type: str
        default: mlflow
      db_name:
        description: Postgres database.
        type: str
        default: mlflow
      db_password:
        description:
          - Postgres password; defaults to the local postgres secret when Postgres runs on this host.
          - With Postgres on another host, this or O(mlflow.db_password_version) is required. The password given is
            kept on this host (C(<secrets_dir>/<project>/mlflow_db_password), 0600 root).
        type: str
      db_password_version:
        description:
          - With Postgres on another host and O(mlflow.db_password) omitted, use the copy of the password kept on this
            host when it was given with this version of the database host's password file (that host's
            C(ansible_facts.mlinfra_postgres_password_version)). Given beside O(mlflow.db_password), it is recorded
            with the copy.
          - When the copy is missing or its version differs (or this is empty), nothing is done and the result has
            C(db_password_needed=true); the role then reads the password from the database host and runs again. A
            no-op run so never reads the database host.
        type: str
      artifacts_volume:
        description: Named volume for artifacts; defaults to <project>-mlflow-artifacts.
        type: str
      workers:
        description: Server worker processes.
        type: int
        default: 2
      allowed_hosts:
        description: Extra Host header values the server accepts (MLflow's --allowed-hosts); a port wildcard is added.
        type: list
        elements: str
        default: []
      basic_auth:
        description: Enable MLflow's basic-auth app (its own database on a volume, a stable secret key).
        type: bool
        default: false
      admin_username:
        description: Admin user for basic-auth.
        type: str
        default: admin
      admin_password:
        description: Admin password for basic-auth; generated and stored on the host when omitted.
        type: str
      default_permission:
        description: Permission for users without an explicit grant.
        type: str
        choices: [READ, EDIT, MANAGE, NO_PERMISSIONS]
        default: READ
      metrics:
        description: Expose Prometheus metrics at C(/metrics) on the server's port (C(--expose-prometheus)).
        type: bool
        default: false
      artifacts_destination:
        description:
          - Store artifacts in S3 or an S3-compatible store, C(s3://<bucket>[/<prefix>]), instead of the artifacts volume;
            the server still proxies them (C(--serve-artifacts)), so clients need no S3 credentials.
        type: str
      s3_endpoint_url:
        description: The endpoint of an S3-compatible store (C(MLFLOW_S3_ENDPOINT_URL)), e.g. V(http://minio.internal:9000).
        type: str
      s3_access_key_id:
        description:
          - Access key, with O(mlflow.s3_secret_access_key), written to an AWS shared credentials file (0600 root) that the
            server reads through C(AWS_SHARED_CREDENTIALS_FILE); never in the container's Env or command line.
            Without keys boto3 looks for credentials itself (for example an instance role).
        type: str
      s3_secret_access_key:
        description: Secret key, with O(mlflow.s3_access_key_id); a change recreates the server with the new file.
        type: str
  tf_serving:
    description: Run TensorFlow Serving on this host, health-gated on every configured model being AVAILABLE.
    type: dict
    suboptions:
      image: *c_image
      env: *c_env
      ports: *c_ports
      volumes: *c_volumes
      memory: *c_memory
      cpus: *c_cpus
      shm_size: *c_shm_size
      ulimits: *c_ulimits
      restart_policy: *c_restart_policy
      log_driver: *c_log_driver
      log_options: *c_log_options
      healthcheck: *c_healthcheck
      gpus: *c_gpus
      model_name:
        description: The one model to serve (MODEL_NAME), under /models/<name>/<version>.
        type: str
      gpu_image:
        description: The image to run instead of O(tf_serving.image) when the service gets GPUs (the C(-gpu) tag).
        type: str
      models:
        description:
          - Several models, served through a rendered models.config (C(model_config_list)) in
            C(<secrets_dir>/<project>/runtime/tf_serving/), mounted read-only at C(/etc/tfserving).
          - With O(tf_serving.config_poll_seconds) above 0 the server re-reads that file by itself. A change to these
            entries then rewrites the file (atomically) and keeps the container; the module waits, within
            O(health_timeout), until every model serves the versions its policy selects (GET C(/v1/models/<name>)) and
            removed models are unloaded. With polling off a change recreates the container.
        type: list
        elements: dict
        suboptions:
          name:
            description: Model name (letters, digits, C(_), C(.), C(-)); each name once.
            type: str
            required: true
          base_path:
            description: Absolute path (or URI) in the container; defaults to /models/<name>.
            type: str
          version_policy:
            description:
              - "Which versions under O(tf_serving.models[].base_path) to serve; exactly one key. Default C(latest: 1)."
              - C(latest) serves the N highest version numbers found, C(all) every version, C(specific) the listed ones.
            type: dict
            suboptions:
              latest:
                description: Serve the N highest versions (N at least 1).
                type: int
              all:
                description: V(true) serves every version found.
                type: bool
              specific:
                description: The version numbers to serve (positive, each once).
                type: list
                elements: int
          version_labels:
            description:
              - "Labels for versions, C({label: version}), e.g. C({stable: 1, canary: 2}). A label starts with a letter or
                C(_) and holds letters, digits, C(_) or C(-); with a C(specific) policy it must name a listed version."
              - The server runs with C(--allow_version_labels_for_unavailable_models), so new labels may name versions
                still loading. TF Serving moves an existing label only to a version that is AVAILABLE; such a move to a
                version the running server does not report AVAILABLE is refused before anything is written. Serve the
                version in one run, move the label in the next.
            type: dict
      config_poll_seconds:
        description:
          - How often TF Serving re-reads models.config (C(--model_config_file_poll_wait_seconds)); V(0) reads it once
            at start, so every change to O(tf_serving.models) recreates the container.
          - A change is served within one interval; the module waits for it. Only used with O(tf_serving.models).
        type: int
        default: 30
      batching:
        description:
          - Server-side batching (C(--enable_batching)) with these BatchingParameters, rendered as a text proto file
            (C(batching.config)) beside models.config. Unknown keys are refused. A change recreates the container
            (TF Serving reads the file only at start).
          - Keys as upstream names them; C(allowed_batch_sizes) must increase and end with C(max_batch_size)
            (C(max_execution_batch_size) with C(enable_large_batch_splitting)).
        type: dict
        suboptions:
          max_batch_size:
            description: Largest batch.
            type: int
          batch_timeout_micros:
            description: How long a partial batch waits, in microseconds (0 or more).
            type: int
          max_enqueued_batches:
            description: Queue length, in batches.
            type: int
          num_batch_threads:
            description: Threads that process batches (the parallelism).
            type: int
          enable_large_batch_splitting:
            description: Split requests larger than the open batch's free room.
            type: bool
          max_execution_batch_size:
            description: Largest batch executed when large batches are split.
            type: int
          allowed_batch_sizes:
            description: Batch sizes to pad to, increasing.
            type: list
            elements: int
          pad_variable_length_inputs:
            description: Pad inputs of different lengths to one length.
            type: bool
      models_volume:
        description: Named volume mounted read-only at /models; defaults to <project>-tf-serving-models.
        type: str
      models_path:
        description: A host directory bind-mounted read-only at /models instead of a volume.
        type: path
      extra_args:
        description: Extra tensorflow_model_server flags.
        type: list
        elements: str
        default: []
      metrics:
        description: Serve Prometheus metrics at C(/monitoring/prometheus/metrics) on the REST port (a monitoring config file).
        type: bool
        default: false
"""
