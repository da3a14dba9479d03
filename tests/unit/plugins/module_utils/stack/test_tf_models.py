"""TF Serving model management: version policies and labels checked and rendered, batching parameters, the
versions a policy serves, the recreate hash, readiness against GET /v1/models, and the converge decision (a
models change under polling rewrites the file and keeps the container)."""

import os

import pytest

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import health, spec, tf_models
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.converge import Converger
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.errors import StackError, StackInputError
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.params import argument_spec

from fake_engine import FakeEngine  # pylint: disable=import-error

TFS = "registry:5000/tfs:2.18"
TWO = [{"name": "ranker", "version_policy": {"specific": [1, 3]}, "version_labels": {"stable": 1, "canary": 3}},
       {"name": "embedder", "version_policy": {"latest": 2}}]


def test_models_config_renders_policies_and_labels():
    third = {"name": "all_of_it", "base_path": "/data/x", "version_policy": {"all": True}}
    text = tf_models.models_config(tf_models.models(TWO + [third]))
    assert text == """model_config_list {
  config {
    name: "ranker"
    base_path: "/models/ranker"
    model_platform: "tensorflow"
    model_version_policy {
      specific {
        versions: 1
        versions: 3
      }
    }
    version_labels {
      key: "canary"
      value: 3
    }
    version_labels {
      key: "stable"
      value: 1
    }
  }
  config {
    name: "embedder"
    base_path: "/models/embedder"
    model_platform: "tensorflow"
    model_version_policy {
      latest {
        num_versions: 2
      }
    }
  }
  config {
    name: "all_of_it"
    base_path: "/data/x"
    model_platform: "tensorflow"
    model_version_policy {
      all {
      }
    }
  }
}
"""
    assert tf_models.configured_names(text) == ["ranker", "embedder", "all_of_it"]
    assert tf_models.configured_labels(text) == {"ranker": {"canary": 3, "stable": 1}}


@pytest.mark.parametrize("entry, words", [
    ({"name": "m", "version_policy": {"latest": 1, "all": True}}, "exactly one of latest, all, specific; got all, latest"),
    ({"name": "m", "version_policy": {"latest": 0}}, "latest: 0 must be at least 1"),
    ({"name": "m", "version_policy": {"specific": []}}, "must be a non-empty list"),
    ({"name": "m", "version_policy": {"specific": [1, 1]}}, "lists a version twice"),
    ({"name": "m", "version_policy": {"specific": [-2]}}, "must be at least 1"),
    ({"name": "m", "version_policy": {"newest": 1}}, "unknown key(s) newest"),
    ({"name": "m", "version_labels": {"1st": 1}}, "label '1st' must start with a letter"),
    ({"name": "m", "version_labels": {"a b": 1}}, "label 'a b'"),
    ({"name": "m", "version_labels": {"stable": "one"}}, "stable: 'one' is not a whole number"),
    ({"name": "m", "version_labels": {"stable": True}}, "is not a whole number"),
    ({"name": "m", "version_policy": {"specific": [1, 2]}, "version_labels": {"stable": 3}},
     "stable: version 3 is not served by the policy (specific: [1, 2])"),
    ({"name": "m", "base_path": "models/m"}, "must be an absolute path or a URI"),
    ({"name": "bad name"}, "is not a valid model name"),
])
def test_bad_model_entries_are_refused_with_the_reason(entry, words):
    with pytest.raises(StackInputError) as err:
        tf_models.models([entry])
    assert words in str(err.value)


def test_a_model_listed_twice_is_refused():
    with pytest.raises(StackInputError, match="listed twice"):
        tf_models.models([{"name": "m"}, {"name": "m"}])


def test_batching_renders_wrapped_values_in_upstream_order():
    text = tf_models.batching({"num_batch_threads": 4, "max_batch_size": 32, "batch_timeout_micros": 0,
                               "allowed_batch_sizes": [8, 32], "pad_variable_length_inputs": True,
                               "enable_large_batch_splitting": None})
    assert text == ("max_batch_size { value: 32 }\nbatch_timeout_micros { value: 0 }\nnum_batch_threads { value: 4 }\n"
                    "allowed_batch_sizes: 8\nallowed_batch_sizes: 32\npad_variable_length_inputs: true\n")
    assert tf_models.batching(None) is None


@pytest.mark.parametrize("given, words", [
    ({"max_batch_size": 8, "bogus": 1}, "unknown key(s) bogus"),
    ({"max_batch_size": 0}, "max_batch_size: 0 must be at least 1"),
    ({"batch_timeout_micros": -1}, "0 or more"),
    ({"max_batch_size": 8, "allowed_batch_sizes": [8, 4]}, "strictly increasing"),
    ({"max_batch_size": 8, "allowed_batch_sizes": [2, 4]}, "last entry (4) must equal max_batch_size (8)"),
    ({"allowed_batch_sizes": [2, 4]}, "must equal max_batch_size (None)"),
    ({"pad_variable_length_inputs": "yes"}, "must be true or false"),
])
def test_bad_batching_is_refused(given, words):
    with pytest.raises(StackInputError) as err:
        tf_models.batching(given)
    assert words in str(err.value)


@pytest.mark.parametrize("policy, disk, expected", [
    (("latest", 2), [1, 5, 3], [3, 5]),
    (("latest", 3), [1], [1]),
    (("all", None), [2, 1], [1, 2]),
    (("specific", [1, 9]), [1, 2], [1, 9]),  # a listed version missing on disk is still awaited (and named)
    (("latest", 1), None, None),
    (("specific", [4]), None, [4]),
])
def test_expected_versions(policy, disk, expected):
    assert tf_models.expected_versions(policy, disk) == expected


def tf_params(tmp_path, **tf):
    raw = {"secrets_dir": str(tmp_path / "secrets"), "health_timeout": 5,
           "tf_serving": {"image": TFS, "ports": [], "models_path": str(tmp_path / "models"), **tf}}
    result = ArgumentSpecValidator(argument_spec()).validate(raw)
    assert not result.error_messages, result.error_messages
    return dict(result.validated_parameters)


def desired(tmp_path, **tf):
    return spec.desired_state(tf_params(tmp_path, **tf), {})["tf_serving"]


def test_polled_models_config_is_out_of_the_recreate_hash_and_mounted_as_a_directory(tmp_path):
    polled = [desired(tmp_path, models=m)["labels"][spec.LABEL_HASH] for m in (TWO, TWO[:1])]
    assert polled[0] == polled[1]
    once = [desired(tmp_path, models=m, config_poll_seconds=0)["labels"][spec.LABEL_HASH] for m in (TWO, TWO[:1])]
    assert once[0] != once[1]
    tfs = desired(tmp_path, models=TWO, batching={"max_batch_size": 8})
    assert tfs["command"][:3] == ["--model_config_file=/etc/tfserving/models.config",
                                  "--model_config_file_poll_wait_seconds=30",
                                  "--allow_version_labels_for_unavailable_models=true"]
    assert tfs["command"][3:5] == ["--enable_batching=true", "--batching_parameters_file=/etc/tfserving/batching.config"]
    assert ["bind", str(tmp_path / "secrets/mlstack/runtime/tf_serving"), "/etc/tfserving", True] in tfs["mounts"]
    assert [f["live"] for f in tfs["files"]] == [False, True]  # batching.config is read at start only


def test_negative_poll_seconds_are_refused(tmp_path):
    with pytest.raises(StackInputError, match="config_poll_seconds"):
        desired(tmp_path, models=TWO, config_poll_seconds=-1)


@pytest.mark.parametrize("states, disk, problem", [
    ({1: "AVAILABLE", 3: "AVAILABLE"}, [1, 2, 3], None),
    ({1: "AVAILABLE"}, [1, 2, 3], "model ranker: version 3 is not reported, not AVAILABLE"),
    ({1: "AVAILABLE", 3: "LOADING"}, None, "model ranker: version 3 is LOADING, not AVAILABLE"),
    ({1: "AVAILABLE", 2: "AVAILABLE", 3: "AVAILABLE"}, [1, 2, 3], "version 2 is still AVAILABLE; its policy does not serve it"),
    ({1: "AVAILABLE", 2: "END", 3: "AVAILABLE"}, [1, 2, 3], None),
])
def test_model_problem_names_the_model_and_version(states, disk, problem):
    model = tf_models.models(TWO)[0]
    found = health.model_problem(model, states, disk)
    assert found == problem if problem is None or problem.startswith("model") else problem in found


def test_latest_without_the_disk_waits_for_no_version_loading():
    model = tf_models.models([{"name": "e", "version_policy": {"latest": 2}}])[0]
    assert health.model_problem(model, {2: "AVAILABLE", 1: "LOADING"}, None) == "model e: version 1 is LOADING"
    assert health.model_problem(model, {}, None) == "model e: no version AVAILABLE"
    assert health.model_problem(model, {2: "AVAILABLE", 1: "END"}, None) is None


def test_removed_models_must_be_unloaded():
    probe = {"port": 8501, "models": [], "removed": ["old"]}
    assert "removed from models.config but version 1 is still AVAILABLE" in health.models_problem(
        "10.0.0.2", probe, states_fn=lambda *a: {1: "AVAILABLE"})
    assert health.models_problem("10.0.0.2", probe, states_fn=lambda *a: {1: "END"}) is None
    assert health.models_problem("10.0.0.2", probe, states_fn=lambda *a: None) is None


# --- the converge decision, against an in-memory engine and a fake server -----------------------------------------
class FakeServer:
    """GET /v1/models/<name> as the running server would answer it once it re-read models.config: every version on
    disk AVAILABLE for a configured model (enough here), END for one no longer configured."""

    def __init__(self, models_dir, config):
        self.models_dir, self.config, self.asked = models_dir, config, []

    def __call__(self, address, port, name, timeout):
        self.asked.append(name)
        path = os.path.join(self.models_dir, name)
        if not os.path.isdir(path):
            return None
        live = name in tf_models.configured_names(self.config.read_text())
        return {int(v): "AVAILABLE" if live else "END" for v in os.listdir(path)}


@pytest.fixture
def stack(tmp_path, monkeypatch):
    for model, version in (("ranker", 1), ("ranker", 3), ("embedder", 1), ("embedder", 2), ("scorer", 1)):
        os.makedirs(tmp_path / "models" / model / str(version))
    server = FakeServer(str(tmp_path / "models"), config_path(tmp_path))
    monkeypatch.setattr(health, "model_states", server)
    engine = FakeEngine(tmp_path / "docker")
    engine.add_image(TFS)
    Converger(engine, tf_params(tmp_path, models=TWO), False).run()
    engine.calls.clear()
    return engine, server


def config_path(tmp_path):
    return tmp_path / "secrets/mlstack/runtime/tf_serving/models.config"


def test_a_models_change_under_polling_rewrites_the_file_and_keeps_the_container(tmp_path, stack):
    engine, _server = stack
    grown = TWO + [{"name": "scorer"}]
    before = config_path(tmp_path).read_text()
    planned = Converger(engine, tf_params(tmp_path, models=grown), True).run()
    assert planned["changed"] and planned["services"]["tf_serving"]["action"] is None
    assert planned["services"]["tf_serving"]["reloaded"] is True
    assert planned["host_changes"] == [str(config_path(tmp_path))]
    diff = planned["diff"][0]
    assert diff["before_header"].endswith("models.config") and diff["before"] == before and 'name: "scorer"' in diff["after"]
    assert config_path(tmp_path).read_text() == before and engine.mutations() == []  # check mode wrote nothing
    done = Converger(engine, tf_params(tmp_path, models=grown), False).run()
    assert done["changed"] and done["services"]["tf_serving"]["action"] is None and done["diff"] == planned["diff"]
    assert 'name: "scorer"' in config_path(tmp_path).read_text() and engine.mutations() == []
    again = Converger(engine, tf_params(tmp_path, models=grown), False).run()
    assert not again["changed"] and again["diff"] == []


def test_a_removed_model_is_awaited_until_unloaded(tmp_path, stack):
    engine, server = stack
    done = Converger(engine, tf_params(tmp_path, models=TWO[:1]), False).run()
    assert done["services"]["tf_serving"]["reloaded"] and server.asked[-1] == "embedder"
    assert engine.mutations() == []


def test_without_polling_a_models_change_recreates(tmp_path, stack):
    engine, _server = stack
    Converger(engine, tf_params(tmp_path, models=TWO, config_poll_seconds=0), False).run()  # the flag changes: new container
    engine.calls.clear()
    done = Converger(engine, tf_params(tmp_path, models=TWO[:1], config_poll_seconds=0), False).run()
    assert done["services"]["tf_serving"]["action"] == "recreate" and "reloaded" not in done["services"]["tf_serving"]


def test_a_label_moved_to_a_version_not_available_is_refused_before_anything_is_written(tmp_path, stack):
    engine, _server = stack
    before = config_path(tmp_path).read_text()
    moved = [{"name": "ranker", "version_policy": {"specific": [1, 3, 4]}, "version_labels": {"stable": 4}}, TWO[1]]
    with pytest.raises(StackError) as err:
        Converger(engine, tf_params(tmp_path, models=moved), False).run()
    assert "model ranker label 'stable' would move from version 1 to version 4" in str(err.value)
    assert "Nothing was changed" in str(err.value)
    assert config_path(tmp_path).read_text() == before and engine.mutations() == []
    # to a version the server has loaded, the move goes through the poll like any change
    ok = [{"name": "ranker", "version_policy": {"specific": [1, 3]}, "version_labels": {"stable": 3}}, TWO[1]]
    assert Converger(engine, tf_params(tmp_path, models=ok), False).run()["services"]["tf_serving"]["reloaded"]


def test_readiness_words_name_the_model_and_version():
    inspect = {"State": {"Status": "running"}, "NetworkSettings": {"Networks": {"mls": {"IPAddress": "10.0.0.2"}}}}
    desired = {"network": "mls", "probe": {"port": 8501, "models": [], "removed": []}}
    ready, words = health.is_ready(inspect, desired, lambda address, probe: "model m: version 2 is LOADING, not AVAILABLE")
    assert not ready and words["health"] == "models not available: model m: version 2 is LOADING, not AVAILABLE"
    fine = {"status": "running", "health": "models available", "restarts": 0}
    assert health.is_ready(inspect, desired, lambda address, probe: None) == (True, fine)


def test_files_of_the_old_layout_are_removed_once_the_new_container_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(health, "model_states", lambda *a: {1: "AVAILABLE"})
    old = tmp_path / "secrets/mlstack/runtime/models.config"
    old.parent.mkdir(parents=True)
    old.write_text("model_config_list {}\n")
    os.makedirs(tmp_path / "models/a/1")
    engine = FakeEngine(tmp_path / "docker")
    engine.add_image(TFS)
    done = Converger(engine, tf_params(tmp_path, models=[{"name": "a"}]), False).run()
    assert "%s (removed)" % old in done["host_changes"] and not old.exists()
    assert config_path(tmp_path).exists()
