# -*- coding: utf-8 -*-
"""Benchmark-only callback: remote module runs per host, written as JSON to $BENCH_MODULE_RUNS.

A task counts once per host it ran a module on (once per loop item); actions that run on the controller
only (debug, set_fact, group_by, meta, includes, the roles' argument spec validation, ...) and skipped tasks
do not count. A delegated task counts for the host it was delegated to where the result says so; ansible-core
2.19 strips that from callback results, so there it counts for the host the task ran for (the slurp the ml_stack
role runs on the db host for a tracking host counts on the tracking host). One delegated to the controller counts
under "localhost (controller)". A no-op copy or template counts one (its stat)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import collections
import json
import os

from ansible.plugins.callback import CallbackBase

CONTROLLER_ONLY = {"debug", "set_fact", "group_by", "add_host", "assert", "fail", "meta", "include_tasks",
                   "import_tasks", "include_role", "import_role", "include_vars", "pause", "set_stats",
                   "import_playbook", "validate_argument_spec"}


def short(action):
    return action.rsplit(".", 1)[-1]


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "module_runs"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self.runs = collections.Counter()
        self.log = []

    def _count(self, result):
        if short(result._task.action) in CONTROLLER_ONLY:  # pylint: disable=protected-access
            return
        data = result._result  # pylint: disable=protected-access
        delegated = data.get("_ansible_delegated_vars") or {}
        host = delegated.get("ansible_delegated_host") or result._host.get_name()  # pylint: disable=protected-access
        if delegated.get("ansible_connection") == "local" or host in ("localhost", "127.0.0.1"):
            host = "localhost (controller)"  # a module run, but not on a managed host
        items = data.get("results")
        self.log.append([host, short(result._task.action), result._task.get_name()])  # pylint: disable=protected-access
        if isinstance(items, list):
            self.runs[host] += sum(1 for item in items if not item.get("skipped"))
        elif not data.get("skipped"):
            self.runs[host] += 1

    def v2_runner_on_ok(self, result):
        self._count(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._count(result)

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("BENCH_MODULE_RUNS")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(dict(self.runs), handle)
        if os.environ.get("BENCH_MODULE_RUNS_VERBOSE"):
            self._display.display("module runs: %s" % json.dumps(self.log))
