"""stack.units: sizes, CPUs, durations, ports, ulimits; every bad value names its parameter."""

import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import units as u


@pytest.mark.parametrize("value, expected", [("2g", 2 * 1024 ** 3), ("512m", 512 * 1024 ** 2), ("1.5G", int(1.5 * 1024 ** 3)),
                                             (1048576, 1048576), ("64mb", 64 * 1024 ** 2), (None, None), ("", None)])
def test_size_bytes(value, expected):
    assert u.size_bytes(value, "x.memory") == expected


@pytest.mark.parametrize("value", ["-1g", "2 gigs", "0", "g", "1.2.3m"])
def test_size_bytes_rejects(value):
    with pytest.raises(u.StackInputError, match="x.memory"):
        u.size_bytes(value, "x.memory")


@pytest.mark.parametrize("value, expected", [("30s", 30 * 10 ** 9), ("1m30s", 90 * 10 ** 9), ("500ms", 5 * 10 ** 8),
                                             (5, 5 * 10 ** 9), ("2h", 7200 * 10 ** 9), (None, None)])
def test_duration_ns(value, expected):
    assert u.duration_ns(value, "h.interval") == expected


@pytest.mark.parametrize("value", ["30", "soon", "10sec", -1, "5s garbage"])
def test_duration_rejects(value):
    with pytest.raises(u.StackInputError, match="h.interval"):
        u.duration_ns(value, "h.interval")


@pytest.mark.parametrize("spec, expected", [
    ("5432", ("5432/tcp", "127.0.0.1", "5432")),
    ("8080:80", ("80/tcp", "127.0.0.1", "8080")),
    ("0.0.0.0:5000:5000", ("5000/tcp", "0.0.0.0", "5000")),
    ("10.0.0.5:53:53/udp", ("53/udp", "10.0.0.5", "53")),
    ("[::1]:8501:8501", ("8501/tcp", "::1", "8501")),
])
def test_parse_port_defaults_to_loopback(spec, expected):
    assert u.parse_port(spec, "p") == expected


@pytest.mark.parametrize("spec", ["abc", "70000:80", "1:2:3:4", "host:80:80", "80/xyz", "0:80", "[zz]:1:2"])
def test_parse_port_rejects(spec):
    with pytest.raises(u.StackInputError, match="redis.ports"):
        u.parse_port(spec, "redis.ports")


def test_nano_cpus():
    assert u.nano_cpus(1.5, "c") == 1_500_000_000
    with pytest.raises(u.StackInputError, match="greater than zero"):
        u.nano_cpus(-2, "mlflow.cpus")


@pytest.mark.parametrize("spec, expected", [("nofile=1024:2048", {"Name": "nofile", "Soft": 1024, "Hard": 2048}),
                                            ("memlock=-1", {"Name": "memlock", "Soft": -1, "Hard": -1})])
def test_parse_ulimit(spec, expected):
    assert u.parse_ulimit(spec, "u") == expected


@pytest.mark.parametrize("spec", ["nofile", "nofile=a:b", "nofile=10:5"])
def test_parse_ulimit_rejects(spec):
    with pytest.raises(u.StackInputError):
        u.parse_ulimit(spec, "u")
