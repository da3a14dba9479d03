# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Human units <-> Docker's: sizes to bytes, CPUs to NanoCPUs, durations to nanoseconds, ports, ulimits."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import re

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.errors import StackInputError


_SIZE = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024 ** 2, "mb": 1024 ** 2, "g": 1024 ** 3, "gb": 1024 ** 3,
         "t": 1024 ** 4, "tb": 1024 ** 4}
_DURATION = {"ns": 1, "us": 1000, "ms": 1000 ** 2, "s": 1000 ** 3, "m": 60 * 1000 ** 3, "h": 3600 * 1000 ** 3}


def size_bytes(value, where):
    """'2g' / '512m' / 1073741824 -> bytes; None stays None."""
    if value is None or value == "":
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?b?)\s*", str(value).lower())
    if not match:
        raise StackInputError("%s: %r is not a size (use e.g. 512m, 2g or a number of bytes)" % (where, value))
    number = float(match.group(1))
    if number <= 0:
        raise StackInputError("%s: %r must be greater than zero" % (where, value))
    return int(number * _SIZE[match.group(2)])


def nano_cpus(value, where):
    if value is None:
        return None
    if value <= 0:
        raise StackInputError("%s: %r CPUs must be greater than zero" % (where, value))
    return int(round(value * 1e9))


def duration_ns(value, where):
    """'30s' / '1m30s' / '500ms' / 30 (seconds) -> nanoseconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise StackInputError("%s: %r must not be negative" % (where, value))
        return int(value * 1000 ** 3)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", str(value))
    if not parts or "".join(n + u for n, u in parts) != str(value).strip():
        raise StackInputError("%s: %r is not a duration (use e.g. 10s, 1m30s, 500ms)" % (where, value))
    return int(sum(float(n) * _DURATION[u] for n, u in parts))


def parse_port(spec, where, default_ip="127.0.0.1"):
    """'[ip:]host_port:container_port[/proto]' or 'container_port' -> (container 'port/proto', ip, host_port).
    Without an ip the port is bound to loopback: opening it wider has to be said explicitly."""
    text = str(spec).strip()
    proto = "tcp"
    if "/" in text:
        text, proto = text.rsplit("/", 1)
        if proto not in ("tcp", "udp", "sctp"):
            raise StackInputError("%s: %r has an unknown protocol %r" % (where, spec, proto))
    if text.startswith("["):  # [::1]:8080:80
        match = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+):(\d+)", text)
        if not match:
            raise StackInputError("%s: %r is not [ipv6]:host_port:container_port" % (where, spec))
        ip, host, container = match.groups()
    else:
        pieces = text.split(":")
        if len(pieces) == 1:
            ip, host, container = default_ip, pieces[0], pieces[0]
        elif len(pieces) == 2:
            ip, (host, container) = default_ip, pieces
        elif len(pieces) == 3:
            ip, host, container = pieces
        else:
            raise StackInputError("%s: %r is not [ip:]host_port:container_port" % (where, spec))
        if ip and not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", ip):
            raise StackInputError("%s: %r has %r where an IPv4 address belongs" % (where, spec, ip))
    for number in (host, container):
        if not number.isdigit() or not 0 < int(number) < 65536:
            raise StackInputError("%s: %r has %r where a port number (1-65535) belongs" % (where, spec, number))
    return "%s/%s" % (int(container), proto), ip or "0.0.0.0", str(int(host))


def parse_ulimit(spec, where):
    """'nofile=1024:2048' or 'nofile=4096' -> {'Name':, 'Soft':, 'Hard':}."""
    match = re.fullmatch(r"([a-z]+)=(-?\d+)(?::(-?\d+))?", str(spec).strip())
    if not match:
        raise StackInputError("%s: %r is not name=soft[:hard] (e.g. nofile=65536:65536)" % (where, spec))
    soft = int(match.group(2))
    hard = int(match.group(3)) if match.group(3) else soft
    if soft > hard:
        raise StackInputError("%s: %r has a soft limit above its hard limit" % (where, spec))
    return {"Name": match.group(1), "Soft": soft, "Hard": hard}
