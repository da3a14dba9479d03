# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name


class ModuleDocFragment(object):  # pylint: disable=too-few-public-methods
    """The ml_stack module's run-wide options (project, state, pulls, timeouts, the engine's address); the
    per-service options stay in the module's own documentation."""

    DOCUMENTATION = r"""
options:
  project:
    description: Prefix of container, network and volume names, and the value of their C(org.mlinfra.project) label.
    type: str
    default: mlstack
  state:
    description:
      - V(present) creates, updates and starts; V(stopped) keeps the containers but stopped;
        V(absent) removes the containers (volumes stay unless O(purge_volumes=true)).
    type: str
    choices: [present, stopped, absent]
    default: present
  purge_volumes:
    description:
      - With O(state=absent), also remove the named volumes this project created (labelled with it; their data
        is lost). Volumes it did not create, such as a shared dataset in C(volumes), are kept and listed.
    type: bool
    default: false
  network:
    description: The user-defined bridge network; defaults to O(project).
    type: str
  secrets_dir:
    description:
      - Where generated secrets and runtime files live (a directory per project).
      - Runtime files (C(<secrets_dir>/<project>/runtime/), the files bind-mounted into the containers, such as
        C(pgpass), the S3 C(aws_credentials) or C(basic_auth.ini)) are removed once the desired state no longer has
        them (S3 or basic auth turned off) and with O(state=absent). The secrets themselves are kept.
    type: path
    default: /etc/mlinfra
  pull:
    description:
      - V(missing) pulls an image only if the host lacks it; V(always) pulls every run and recreates
        only when the image ID changed; V(never) fails if the image is missing.
    type: str
    choices: [missing, always, never]
    default: missing
  registry_auth:
    description: Credentials for private registries, used when pulling.
    type: list
    elements: dict
    default: []
    suboptions:
      registry:
        description: The registry host (and port), as it appears in image names.
        type: str
        required: true
      username:
        description: User name.
        type: str
        required: true
      password:
        description: Password or token.
        type: str
        required: true
  health_timeout:
    description: Seconds to wait for each phase's services to become healthy, counted from their start.
    type: int
    default: 300
  pull_timeout:
    description: Seconds one image pull may take before it is stopped (nothing else has been touched then).
    type: int
    default: 1800
  migration_timeout:
    description: Seconds to wait for MLflow's one-shot schema migration; one still running is left running.
    type: int
    default: 3600
  docker_host:
    description:
      - The Docker engine's address, V(unix:///path/to/docker.sock) or plain V(tcp://host:port).
      - TLS and C(ssh://) addresses are not supported; the module runs on the Docker host itself.
    type: str
    default: unix:///var/run/docker.sock
  api_version:
    description: Docker API version to use, such as V(1.41); V(auto) uses the engine's own version.
    type: str
    default: auto
"""
