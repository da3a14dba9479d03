# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error root of the collection. Every error module_utils raise derives from MlinfraError: a
message that says what failed and what to do, and machine-readable extras (logs, rolled_back, ...) that a
module's single `except MlinfraError` passes on to fail_json."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import socket


class MlinfraError(Exception):
    """What failed and what to do; `extra` holds the machine-readable details for fail_json."""

    def __init__(self, msg, **extra):
        super(MlinfraError, self).__init__(msg)
        self.extra = extra


class InputError(MlinfraError):
    """A parameter value is malformed, found before anything was touched; the message names the parameter."""


def failure_message(module_name, exc):
    """`<module> on <host>: <message>`, the words every module fails with; input errors say nothing was changed."""
    lead = "invalid input, nothing was changed: " if isinstance(exc, InputError) else ""
    return "%s on %s: %s%s" % (module_name, socket.gethostname(), lead, exc)
