"""The TF Serving stand-in's monitoring contract, as upstream's http_server.cc has it: the metrics page is
served only when prometheus_config.enable is true, at exactly its path (an empty path means
/monitoring/prometheus/metrics), as text/plain; a config file that does not parse stops the server."""

import importlib.machinery
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "fleet/images/fixtures/tfserving/tensorflow_model_server.py"


def standin():
    loader = importlib.machinery.SourceFileLoader("standin_tf_serving", str(SCRIPT))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


@pytest.mark.parametrize("text, path", [
    ('prometheus_config {\n  enable: true\n  path: "/monitoring/prometheus/metrics"\n}\n', "/monitoring/prometheus/metrics"),
    ('prometheus_config { enable: true path: "/metrics" }', "/metrics"),
    ("prometheus_config { enable: true }", "/monitoring/prometheus/metrics"),
    ("prometheus_config { enable: false }", None),
    ("", None),
])
def test_monitoring_config_gives_the_metrics_path(tmp_path, text, path):
    config = tmp_path / "monitoring.config"
    config.write_text(text)
    assert standin().metrics_path(str(config)) == path


@pytest.mark.parametrize("text", ["prometheus_config { enable: yes }", "prometheus_config { enable: true", "bogus: 1"])
def test_a_monitoring_config_that_does_not_parse_stops_the_server(tmp_path, text):
    config = tmp_path / "monitoring.config"
    config.write_text(text)
    with pytest.raises(SystemExit):
        standin().metrics_path(str(config))


# --- model management: policies, labels, config polling, batching (upstream's contract, see the stand-in) --------
def write_versions(root, model, *versions, loadable=True):
    for version in versions:
        path = root / model / str(version)
        path.mkdir(parents=True)
        if loadable:
            (path / "saved_model.pb").write_text("fixture")


def rendered(tmp_path, entries):
    from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import tf_models  # pylint: disable=import-outside-toplevel
    checked = tf_models.models([dict(e, base_path=str(tmp_path / "m" / e["name"])) for e in entries])
    path = tmp_path / "models.config"
    path.write_text(tf_models.models_config(checked))
    return path, checked


def test_the_modules_models_config_parses_as_rendered(tmp_path):
    path, checked = rendered(tmp_path, [{"name": "r", "version_policy": {"specific": [1, 3]}, "version_labels": {"stable": 1}},
                                        {"name": "e", "version_policy": {"latest": 2}}, {"name": "a", "version_policy": {"all": True}}])
    parsed = standin().parse_models_config(str(path))
    assert [(m["name"], m["base_path"], tuple(m["policy"]), m["labels"]) for m in parsed] == \
        [(m["name"], m["base_path"], tuple(m["policy"]), m["labels"]) for m in checked]


@pytest.mark.parametrize("text, words", [
    ('model_config_list { config { name: "a" base_path: "/m/a" } ', "missing '}'"),
    ('model_config_list { config { name: "a" base_path: "/m/a" bogus: 1 } }', 'no field named "bogus"'),
    ('model_config_list { config { name: "a" base_path: "m/a" } }', "absolute path or URI"),
    ('model_config_list { config { name: "a" base_path: "/a" } config { name: "a" base_path: "/b" } }', "multiple times"),
])
def test_a_models_config_upstream_would_refuse_is_refused(tmp_path, text, words):
    path = tmp_path / "models.config"
    path.write_text(text)
    with pytest.raises(ValueError, match=words):
        standin().parse_models_config(str(path))


def test_policies_select_versions_and_states_look_like_upstreams(tmp_path):
    mod = standin()
    write_versions(tmp_path / "m", "r", 1, 2, 3)
    write_versions(tmp_path / "m", "e", 1, 2, 3)
    write_versions(tmp_path / "m", "e", 4, loadable=False)
    path, _checked = rendered(tmp_path, [{"name": "r", "version_policy": {"specific": [1, 3]}, "version_labels": {"stable": 1}},
                                         {"name": "e", "version_policy": {"latest": 2}}])
    models = mod.Models(allow_unavailable_labels=True)
    models.reload(mod.parse_models_config(str(path)))
    assert [(s["version"], s["state"]) for s in models.status("r")] == [("3", "AVAILABLE"), ("1", "AVAILABLE")]
    e = models.status("e")  # newest first; 4 has no saved_model.pb: its load fails and it ends with the error
    assert [(s["version"], s["state"]) for s in e] == [("4", "END"), ("3", "AVAILABLE")]
    assert e[0]["status"]["error_message"] and e[1]["status"] == {"error_code": "OK", "error_message": ""}
    assert models.resolve("r", label="stable")[1] == 1 and models.resolve("e")[1] == 3
    assert models.status("nope") == []  # the handler answers 404


def test_labels_need_the_flag_at_start_and_move_only_to_available_versions(tmp_path):
    mod = standin()
    write_versions(tmp_path / "m", "r", 1, 2, 3)
    path, _checked = rendered(tmp_path, [{"name": "r", "version_policy": {"specific": [1, 2]}, "version_labels": {"stable": 1}}])
    with pytest.raises(ValueError, match="not currently available"):
        mod.Models(allow_unavailable_labels=False).reload(mod.parse_models_config(str(path)))
    models = mod.Models(allow_unavailable_labels=True)
    models.reload(mod.parse_models_config(str(path)))
    moved, _checked = rendered(tmp_path, [{"name": "r", "version_policy": {"specific": [1, 2, 3]}, "version_labels": {"stable": 3}}])
    with pytest.raises(ValueError, match="version 3 of model r"):
        models.reload(mod.parse_models_config(str(moved)))
    assert [s["version"] for s in models.status("r")] == ["2", "1"]  # the old config still serves
    ok, _checked = rendered(tmp_path, [{"name": "r", "version_policy": {"specific": [1, 2]}, "version_labels": {"stable": 2}}])
    models.reload(mod.parse_models_config(str(ok)))
    assert models.resolve("r", label="stable")[1] == 2


def test_a_removed_model_ends_but_is_still_reported(tmp_path):
    mod = standin()
    write_versions(tmp_path / "m", "a", 1)
    write_versions(tmp_path / "m", "b", 1)
    both, _checked = rendered(tmp_path, [{"name": "a"}, {"name": "b"}])
    models = mod.Models(allow_unavailable_labels=True)
    models.reload(mod.parse_models_config(str(both)))
    one, _checked = rendered(tmp_path, [{"name": "a"}])
    models.reload(mod.parse_models_config(str(one)))
    assert [(s["version"], s["state"]) for s in models.status("b")] == [("1", "END")]
    assert models.resolve("b") is None


def test_batching_file_parses_as_the_module_renders_it(tmp_path):
    from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import tf_models  # pylint: disable=import-outside-toplevel
    path = tmp_path / "batching.config"
    path.write_text(tf_models.batching({"max_batch_size": 8, "batch_timeout_micros": 100, "allowed_batch_sizes": [4, 8],
                                        "enable_large_batch_splitting": False, "pad_variable_length_inputs": True}))
    assert standin().parse_batching(str(path)) == {"max_batch_size": 8, "batch_timeout_micros": 100, "allowed_batch_sizes": [4, 8],
                                                   "enable_large_batch_splitting": False, "pad_variable_length_inputs": True}


@pytest.mark.parametrize("text", ["max_batch_size: 8", "max_batch_size { value: 8", "bogus { value: 1 }",
                                  "pad_variable_length_inputs: maybe"])
def test_a_batching_file_that_does_not_parse_is_refused(tmp_path, text):
    path = tmp_path / "batching.config"
    path.write_text(text)
    with pytest.raises(ValueError):
        standin().parse_batching(str(path))


def test_batch_sizes_that_do_not_end_at_the_max_fail_each_model_load(tmp_path):
    mod = standin()
    write_versions(tmp_path / "m", "a", 1)
    path, _checked = rendered(tmp_path, [{"name": "a"}])
    models = mod.Models(True, {"max_batch_size": 8, "allowed_batch_sizes": [2, 4]})
    models.reload(mod.parse_models_config(str(path)))
    assert models.status("a")[0]["state"] == "END" and "must match max_batch_size" in models.status("a")[0]["status"]["error_message"]
