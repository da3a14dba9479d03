# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ml_stack's errors, under the collection's root (module_utils/errors.py); db_copy.DbPasswordNeeded is the third
(not a failure: the role reads the password and runs again)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import InputError, MlinfraError


class StackInputError(InputError):
    """A parameter value is malformed; the message names the parameter and the value."""


class StackError(MlinfraError):
    """Docker refused or a service did not come up; extra carries details (logs, states)."""
