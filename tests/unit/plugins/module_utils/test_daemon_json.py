"""daemon_json: merge, remove, normalise, semantic equality, validation, render, atomic write."""

import json
import os
import stat

import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import daemon_json as dj
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import files

FOREIGN = {"debug": True, "runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}},
           "features": {"buildkit": True}, "log-opts": {"max-size": "50m", "labels": "a"}}


@pytest.mark.parametrize("current, settings, expected", [
    ({}, {"a": 1}, {"a": 1}),
    ({"a": 1}, {"b": 2}, {"a": 1, "b": 2}),
    ({"log-opts": {"max-size": "50m", "labels": "a"}}, {"log-opts": {"max-size": "10m"}},
     {"log-opts": {"max-size": "10m", "labels": "a"}}),
    ({"features": {"buildkit": True}}, {"features": {"cdi": True}}, {"features": {"buildkit": True, "cdi": True}}),
    ({"registry-mirrors": ["a", "b"]}, {"registry-mirrors": ["c"]}, {"registry-mirrors": ["c"]}),
    ({"log-opts": {"x": "1"}}, {"log-opts": "oops"}, {"log-opts": "oops"}),
    ({"a": {"b": {"c": 1, "d": 2}}}, {"a": {"b": {"c": 3}}}, {"a": {"b": {"c": 3, "d": 2}}}),
])
def test_deep_merge(current, settings, expected):
    snapshot = json.dumps(current, sort_keys=True)
    assert dj.deep_merge(current, settings) == expected
    assert json.dumps(current, sort_keys=True) == snapshot  # input untouched


@pytest.mark.parametrize("paths, expected", [
    (["debug"], {k: v for k, v in FOREIGN.items() if k != "debug"}),
    (["missing", ["no", "such"]], FOREIGN),
    ([["log-opts", "labels"]], {**FOREIGN, "log-opts": {"max-size": "50m"}}),
    ([["features", "buildkit"]], {k: v for k, v in FOREIGN.items() if k != "features"}),
    ([["debug", "deeper"]], FOREIGN),
])
def test_remove_keys(paths, expected):
    assert dj.remove_keys(FOREIGN, paths) == expected


def test_remove_rejects_bad_path():
    with pytest.raises(dj.DaemonJsonError, match="neither a key"):
        dj.remove_keys({}, [3])


def test_desired_config_merge_keeps_foreign_keys():
    desired = dj.desired_config(FOREIGN, {"log-driver": "json-file", "log-opts": {"max-file": "3"}})
    assert desired["debug"] is True and desired["runtimes"] == FOREIGN["runtimes"]
    assert desired["log-opts"] == {"max-size": "50m", "labels": "a", "max-file": "3"}


def test_desired_config_replace_and_remove():
    assert dj.desired_config(FOREIGN, {"a": 1}, mode="replace") == {"a": 1}
    assert dj.desired_config(FOREIGN, {"a": 1}, remove=["a"], mode="replace") == {}


def test_semantic_equality_ignores_formatting(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text('{"log-opts":{"max-file":"3","max-size":"10m"},   "debug": true}')
    current, raw, _bom = dj.load(str(path))
    assert raw.startswith("{")
    assert dj.desired_config(current, {"debug": True, "log-opts": {"max-size": "10m"}}) == current


@pytest.mark.parametrize("content, message", [
    ('{"debug": true,}', "not valid JSON"),
    ("[1, 2]", "not an object"),
    ("{'single': 1}", "not valid JSON"),
])
def test_load_refuses_bad_files(tmp_path, content, message):
    path = tmp_path / "daemon.json"
    path.write_text(content)
    with pytest.raises(dj.DaemonJsonError, match=message):
        dj.load(str(path))
    assert path.read_text() == content


def test_load_missing_and_empty(tmp_path):
    assert dj.load(str(tmp_path / "nope.json")) == ({}, None, None)
    (tmp_path / "empty.json").write_text("\n")
    assert dj.load(str(tmp_path / "empty.json")) == ({}, "\n", None)


@pytest.mark.parametrize("config, host_flag, fragment", [
    ({"hosts": ["unix:///var/run/docker.sock"]}, True, "'hosts'"),
    ({"log-opts": {"max-file": 3}}, False, "log-opts values must be strings"),
    ({"log-opts": "x"}, False, "'log-opts' must be an object"),
    ({"registry-mirrors": "https://m"}, False, "'registry-mirrors' must be a list"),
])
def test_validate_finds_problems(config, host_flag, fragment):
    assert any(fragment in p for p in dj.validate(config, host_flag))


def test_validate_accepts_hosts_without_systemd_flag():
    assert dj.validate({"hosts": ["unix:///var/run/docker.sock"]}, False) == []


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {1: "a"}, object(), {"x": {1, 2}}])
def test_validate_rejects_values_json_cannot_hold(value):
    with pytest.raises(dj.DaemonJsonError, match="settings"):
        dj.validate({"key": value})


def test_render_is_canonical():
    text = dj.render({"b": 1, "a": {"d": 1, "c": 2}})
    assert text.endswith("}\n") and text.index('"a"') < text.index('"b"') and text.index('"c"') < text.index('"d"')
    assert dj.render(json.loads(text)) == text


def test_changed_paths():
    before = {"a": 1, "log-opts": {"max-size": "50m", "x": "1"}, "gone": True}
    after = {"a": 1, "log-opts": {"max-size": "10m", "x": "1"}, "new": 2}
    assert dj.changed_paths(before, after) == ["gone", "log-opts.max-size", "new"]


def test_atomic_write_keeps_mode_and_leaves_no_temp(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text("{}")
    os.chmod(path, 0o600)
    files.atomic_write(str(path), dj.render({"a": 1}))
    assert json.loads(path.read_text()) == {"a": 1}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["daemon.json"]


def test_atomic_write_new_file_and_dir(tmp_path):
    path = tmp_path / "etc" / "docker" / "daemon.json"
    files.atomic_write(str(path), "{}\n")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_backup(tmp_path):
    path = tmp_path / "daemon.json"
    assert dj.backup(str(path)) is None
    path.write_text('{"a": 1}')
    copy = dj.backup(str(path))
    assert copy.endswith(".bak") and open(copy, encoding="utf-8").read() == '{"a": 1}'
