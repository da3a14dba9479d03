# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dockerd behind a proxy: a systemd drop-in for docker.service with HTTP_PROXY/HTTPS_PROXY/NO_PROXY.

Pure functions: render the drop-in, check values, redact credentials for diffs and messages.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import re

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import MlinfraError

DROPIN = "/etc/systemd/system/docker.service.d/mlinfra-proxy.conf"
VARIABLES = (("http", "HTTP_PROXY"), ("https", "HTTPS_PROXY"), ("no_proxy", "NO_PROXY"))
USERINFO = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'\\\\]+$")


class ProxyError(MlinfraError):
    """A proxy setting cannot go into a unit file as given; the message names it."""


def normalise(proxy):
    """{'http': .., 'https': .., 'no_proxy': str or list} -> {VARIABLE: value} without empty ones."""
    result = {}
    for key, variable in VARIABLES:
        value = (proxy or {}).get(key) or ""
        if isinstance(value, (list, tuple)):
            value = ",".join(str(item).strip() for item in value if str(item).strip())
        value = value.strip()
        if key == "no_proxy":
            value = ",".join(part.strip() for part in value.split(",") if part.strip())
            if re.search(r"[\s\"'\\\\]", value):
                raise ProxyError("no_proxy: %r must be host names, domains or addresses separated by commas" % value)
        elif value and not URL.match(value):
            raise ProxyError("%s: %s is not a proxy URL such as http://proxy.example.com:3128 (no spaces or quotes)"
                             % (key, redact(value)))
        if value:
            result[variable] = value
    return result


def render(proxy):
    """The drop-in's text, or None when no proxy is set (the drop-in is then removed)."""
    variables = normalise(proxy)
    if not set(variables) - {"NO_PROXY"}:
        return None
    # systemd expands % specifiers in Environment=; a percent-encoded password (%40) must stay as it is.
    lines = ['Environment="%s=%s"' % (name, value.replace("%", "%%")) for name, value in sorted(variables.items())]
    return "# Managed by mlinfra.docker_ml (docker_proxy); removed when the proxy is unset.\n[Service]\n" + "\n".join(lines) + "\n"


def secrets(proxy):
    """Passwords in the proxy URLs (for no_log); the URL with its password, too."""
    found = []
    for value in normalise(proxy).values():
        match = re.search(r"://[^:/@\s]*:([^@\s]*)@", value)
        if match and match.group(1):
            found += [match.group(1), value, value.replace("%", "%%")]
    return found


def redact(text):
    """Credentials in proxy URLs replaced by ********."""
    return USERINFO.sub(r"\1********@", text) if text else text
