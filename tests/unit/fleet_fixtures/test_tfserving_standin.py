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
