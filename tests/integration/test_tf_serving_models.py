"""TF Serving model management on a real serving host (host3 only): version policies and labels in models.config,
a models change served by the running server (no new container), batching parameters, bad values refused."""

import json

import pytest

from tests.integration.conftest import host_exec
from tests.integration.stack_helpers import BASE_VARS, call, changed, converge, tunnel

pytestmark = pytest.mark.fleet
NAME = "it-tfs"
HOST = "host3"
CONFIG = "/etc/mlinfra/mlstack/runtime/tf_serving/models.config"
MODELS = [{"name": "ranker", "version_policy": {"specific": [1, 2]}, "version_labels": {"stable": 1, "canary": 2}},
          {"name": "embedder", "version_policy": {"latest": 2}}]
BATCHING = {"max_batch_size": 8, "batch_timeout_micros": 1000, "num_batch_threads": 2, "allowed_batch_sizes": [4, 8]}


def add_version(fl, model, version, weight=0.5):
    rc, out = host_exec(fl, HOST, "sh", "-c", f"mkdir -p /srv/models/{model}/{version}/assets && "
                        f"echo fixture > /srv/models/{model}/{version}/saved_model.pb && "
                        f"echo '{{\"w\": {weight}, \"b\": {version}}}' > /srv/models/{model}/{version}/assets/standin.json")
    assert rc == 0, out


def run(fl, *args, models=None, check=True, **extra):
    variables = {"ml_stack_tf_serving_models": models or MODELS, **extra}
    return converge(fl, "-l", HOST, *args, check=check, **variables)


def started(fl):
    rc, out = host_exec(fl, HOST, "docker", "inspect", "-f", "{{.Id}} {{.State.StartedAt}}", "mlstack-tf-serving")
    assert rc == 0, out
    return out.strip()


def states(base, model):
    return {s["version"]: s["state"] for s in call(f"{base}/v1/models/{model}")["model_version_status"]}


def host_file(fl, path):
    return host_exec(fl, HOST, "cat", path)[1]


@pytest.fixture(scope="module")
def fl(make_fleet):
    fleet = make_fleet(NAME, hosts=3, fixtures=True)
    for model, version in (("ranker", 1), ("ranker", 2), ("ranker", 3), ("embedder", 1), ("embedder", 2), ("embedder", 3)):
        add_version(fleet, model, version)
    fleet.vars = {**{k: v for k, v in BASE_VARS.items() if k != "ml_stack_tf_serving_model_name"},
                  "ml_stack_tf_serving_config_poll_seconds": 2, "ml_stack_tf_serving_batching": BATCHING}
    fleet.first = run(fleet)
    return fleet


def test_policies_and_labels_are_served(fl):
    assert changed(fl.first)[HOST] >= 1
    text = host_file(fl, CONFIG)
    assert "specific {\n        versions: 1\n        versions: 2\n      }" in text
    assert 'version_labels {\n      key: "canary"\n      value: 2\n    }' in text and "num_versions: 2" in text
    with tunnel(fl, HOST, 8501) as base:
        assert states(base, "ranker") == {"2": "AVAILABLE", "1": "AVAILABLE"}  # 3 is on disk, not in the policy
        assert states(base, "embedder") == {"3": "AVAILABLE", "2": "AVAILABLE"}  # the 2 highest
        assert call(f"{base}/v1/models/ranker/labels/stable:predict", {"instances": [2.0]}) == {"predictions": [2.0]}
        assert call(f"{base}/v1/models/ranker/labels/canary:predict", {"instances": [2.0]}) == {"predictions": [3.0]}


def test_batching_parameters_file_is_rendered_and_accepted(fl):
    text = host_file(fl, "/etc/mlinfra/mlstack/runtime/tf_serving/batching.config")
    assert text == ("max_batch_size { value: 8 }\nbatch_timeout_micros { value: 1000 }\nnum_batch_threads { value: 2 }\n"
                    "allowed_batch_sizes: 4\nallowed_batch_sizes: 8\n")
    rc, cmd = host_exec(fl, HOST, "docker", "inspect", "-f", "{{json .Config.Cmd}}", "mlstack-tf-serving")
    assert "--enable_batching=true" in json.loads(cmd)
    logs = host_exec(fl, HOST, "docker", "logs", "mlstack-tf-serving")[1]
    assert 'batching enabled with {"allowed_batch_sizes": [4, 8]' in logs


def test_second_run_and_check_change_nothing(fl):
    assert changed(run(fl))[HOST] == 0
    assert changed(run(fl, "--check", "--diff"))[HOST] == 0


def test_new_model_and_version_are_served_by_the_running_server(fl):
    before = started(fl)
    add_version(fl, "embedder", 4)
    add_version(fl, "scorer", 1)
    grown = MODELS + [{"name": "scorer"}]
    planned = run(fl, "--check", "--diff", models=grown)
    assert changed(planned)[HOST] == 1
    assert '+    name: "scorer"' in planned.stdout and "recreate" not in planned.stdout
    assert "scorer" not in host_file(fl, CONFIG)  # check mode wrote nothing
    applied = run(fl, "-v", models=grown)
    assert changed(applied)[HOST] == 1 and '"reloaded": true' in applied.stdout
    assert started(fl) == before  # same container, never restarted
    with tunnel(fl, HOST, 8501) as base:
        assert states(base, "scorer") == {"1": "AVAILABLE"}
        assert states(base, "embedder") == {"4": "AVAILABLE", "3": "AVAILABLE", "2": "END"}
    assert changed(run(fl, models=grown))[HOST] == 0
    # and a model taken out of the config is unloaded, again without a new container
    assert changed(run(fl))[HOST] == 1
    assert started(fl) == before
    with tunnel(fl, HOST, 8501) as base:
        assert states(base, "scorer") == {"1": "END"}


@pytest.mark.parametrize("models, extra, words", [
    ([{"name": "ranker", "version_policy": {"specific": [1, 2]}, "version_labels": {"stable": 3}}], {},
     "version 3 is not served by the policy"),
    ([{"name": "ranker", "version_policy": {"latest": 1, "all": True}}], {}, "give exactly one of latest, all, specific"),
    ([{"name": "ranker", "version_labels": {"1x": 1}}], {}, "must start with a letter"),
    (MODELS, {"ml_stack_tf_serving_batching": {"max_batch_size": 8, "bogus": 1}}, "bogus"),
    # a label moved to a version the running server has not loaded: TF Serving would refuse the whole config
    ([{"name": "ranker", "version_policy": {"specific": [1, 2, 3]}, "version_labels": {"stable": 3, "canary": 2}},
      MODELS[1]], {}, "which the running server reports"),
])
def test_bad_values_are_refused_and_nothing_changes(fl, models, extra, words):
    before, text = started(fl), host_file(fl, CONFIG)
    proc = run(fl, models=models, check=False, **extra)
    assert proc.returncode != 0 and words in proc.stdout, proc.stdout[-3000:]
    assert started(fl) == before and host_file(fl, CONFIG) == text
