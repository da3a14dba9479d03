# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nvidia_toolkit, plus the controller's nvidia-ml-py where a host needs it (see plugin_utils/nvml_shipping)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

from ansible_collections.mlinfra.docker_ml.plugins.plugin_utils.nvml_shipping import ShipsNvmlBindings


class ActionModule(ShipsNvmlBindings):
    MODULE = "mlinfra.docker_ml.nvidia_toolkit"
