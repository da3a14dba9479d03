# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The daemon.json options, one argument spec for the two modules that take them: daemon_config (as its
own options) and docker_engine (under `daemon`, so install and configuration are one module run)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name


def argument_spec():
    return dict(
        path=dict(type="path", default="/etc/docker/daemon.json"),
        settings=dict(type="dict", default={}),
        remove=dict(type="list", elements="raw", default=[]),
        mode=dict(type="str", choices=["merge", "replace"], default="merge"),
        backup=dict(type="bool", default=False),
        restart=dict(type="str", choices=["auto", "never"], default="auto"),
        restart_timeout=dict(type="int", default=60),
        validate=dict(type="bool", default=True),
        owner=dict(type="str"),
        # Not no_log as a whole: only the password inside a URL is secret (the modules add it to no_log_values).
        proxy=dict(type="dict", no_log=False, options=dict(
            http=dict(type="str", no_log=False), https=dict(type="str", no_log=False),
            no_proxy=dict(type="list", elements="str", default=[]))),
    )
