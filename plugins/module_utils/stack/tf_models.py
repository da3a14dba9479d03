# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TF Serving's model management (pure): the models' version policies and labels checked and rendered as
the model_config_list text proto, the batching parameters file, and which versions a policy serves.

Field names follow upstream tensorflow/serving: config/model_server_config.proto (ModelConfig: name, base_path,
model_platform, model_version_policy, version_labels), config/file_system_storage_path_source.proto
(ServableVersionPolicy: latest{num_versions} | all{} | specific{versions}) and
servables/tensorflow/session_bundle_config.proto (BatchingParameters, wrapped values)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import re

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.errors import StackInputError

MODEL_NAME = re.compile(r"[A-Za-z0-9_.-]+")
LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,62}")
POLICY_KINDS = ("latest", "all", "specific")
# BatchingParameters: (name, kind) where kind is int64 / bool wrapped in google.protobuf.*Value, a repeated
# int64, or a plain bool. thread_pool_name is left out: the server names its shared pool itself.
BATCHING = (("max_batch_size", "int"), ("batch_timeout_micros", "int"), ("max_enqueued_batches", "int"),
            ("num_batch_threads", "int"), ("enable_large_batch_splitting", "bool"), ("max_execution_batch_size", "int"),
            ("allowed_batch_sizes", "ints"), ("pad_variable_length_inputs", "plain_bool"))
BATCHING_KEYS = tuple(name for name, _kind in BATCHING)


def _positive_int(value, where):
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value), 10)
        except ValueError:
            raise StackInputError("%s: %r is not a whole number" % (where, value))
    if value < 1:
        raise StackInputError("%s: %r must be at least 1" % (where, value))
    return value


def version_policy(policy, where):
    """A version_policy ({latest: N} | {all: true} | {specific: [versions]}; none given = latest 1, upstream's
    default) as ("latest", N) / ("all", None) / ("specific", [versions ascending])."""
    given = {k: v for k, v in (policy or {}).items() if v is not None and v is not False}
    unknown = sorted(set(given) - set(POLICY_KINDS))
    if unknown:
        raise StackInputError("%s: unknown key(s) %s; use exactly one of latest, all, specific" % (where, ", ".join(unknown)))
    if len(given) > 1:
        raise StackInputError("%s: give exactly one of latest, all, specific; got %s" % (where, ", ".join(sorted(given))))
    if not given:
        return ("latest", 1)
    kind, value = next(iter(given.items()))
    if kind == "latest":
        return ("latest", _positive_int(value, where + ".latest"))
    if kind == "all":
        if value is not True:
            raise StackInputError("%s.all: %r must be true" % (where, value))
        return ("all", None)
    if not isinstance(value, list) or not value:
        raise StackInputError("%s.specific: %r must be a non-empty list of versions" % (where, value))
    versions = [_positive_int(v, "%s.specific" % where) for v in value]
    if len(set(versions)) != len(versions):
        raise StackInputError("%s.specific: %r lists a version twice" % (where, value))
    return ("specific", sorted(versions))


def version_labels(labels, policy, where):
    """{label: version}: labels are identifiers (a number would read as a version), versions positive; with a
    specific policy a label must point at a version it serves (upstream refuses a label on a version that is not
    available: server_core.cc UpdateModelVersionLabelMap)."""
    checked = {}
    for label, version in sorted((labels or {}).items()):
        if not LABEL.fullmatch(str(label)):
            raise StackInputError("%s: label %r must start with a letter or '_' and hold only letters, digits, '_' or '-'"
                                  % (where, label))
        checked[str(label)] = _positive_int(version, "%s.%s" % (where, label))
        if policy[0] == "specific" and checked[str(label)] not in policy[1]:
            raise StackInputError("%s.%s: version %d is not served by the policy (specific: %s)"
                                  % (where, label, checked[str(label)], policy[1]))
    return checked


def models(entries, model_name=None):
    """The models to serve, checked: [{name, base_path, policy, labels}]. No entries: the single model_name
    (default "model") at /models/<name>, latest version."""
    if not entries:
        name = model_name or "model"
        entries = [{"name": name}]
    checked, seen = [], set()
    for index, entry in enumerate(entries):
        name = entry.get("name")
        where = "tf_serving.models[%d]" % index
        if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
            raise StackInputError("%s.name: %r is not a valid model name (letters, digits, '_', '.', '-')" % (where, name))
        if name in seen:  # upstream: "Illegal to list model <name> multiple times in config list"
            raise StackInputError("%s.name: model %r is listed twice" % (where, name))
        seen.add(name)
        base_path = entry.get("base_path") or "/models/%s" % name
        if '"' in base_path or "\\" in base_path or "\n" in base_path or not (base_path.startswith("/") or "://" in base_path):
            # upstream requires absolute paths or URIs (server_core.cc ValidateModelConfigList)
            raise StackInputError("%s.base_path: %r must be an absolute path or a URI without quotes" % (where, base_path))
        policy = version_policy(entry.get("version_policy"), where + ".version_policy")
        labels = version_labels(entry.get("version_labels"), policy, where + ".version_labels")
        checked.append({"name": name, "base_path": base_path, "policy": policy, "labels": labels})
    return checked


def _policy_lines(policy):
    kind, value = policy
    if kind == "latest":
        return ["    model_version_policy {", "      latest {", "        num_versions: %d" % value, "      }", "    }"]
    if kind == "all":
        return ["    model_version_policy {", "      all {", "      }", "    }"]
    return (["    model_version_policy {", "      specific {"] + ["        versions: %d" % v for v in value]
            + ["      }", "    }"])


def models_config(checked):
    """TF Serving's ModelServerConfig text proto (model_config_list) for checked models."""
    lines = ["model_config_list {"]
    for model in checked:
        lines += ["  config {", '    name: "%s"' % model["name"], '    base_path: "%s"' % model["base_path"],
                  '    model_platform: "tensorflow"']
        lines += _policy_lines(model["policy"])
        for label, version in sorted(model["labels"].items()):
            lines += ["    version_labels {", '      key: "%s"' % label, "      value: %d" % version, "    }"]
        lines.append("  }")
    return "\n".join(lines + ["}"]) + "\n"


def configured_names(text):
    """The model names in a models.config this module wrote (None: no file)."""
    if text is None:
        return []
    return re.findall(r'^    name: "([^"]+)"$', text, re.M)


def removed_names(old_text, checked):
    """The models in old_text (a models.config this module wrote) that checked no longer has."""
    now = [model["name"] for model in checked]
    return [name for name in configured_names(old_text) if name not in now]


def configured_labels(text):
    """{model: {label: version}} in a models.config this module wrote (its own layout, one field per line)."""
    labels, model = {}, None
    for line in (text or "").splitlines():
        name = re.match(r'^    name: "([^"]+)"$', line)
        if name:
            model = name.group(1)
        key = re.match(r'^      key: "([^"]+)"$', line)
        if key:
            label = key.group(1)
        value = re.match(r"^      value: (\d+)$", line)
        if value and model is not None:
            labels.setdefault(model, {})[label] = int(value.group(1))
    return labels


def moved_labels(old_text, checked):
    """[(model, label, old version, new version)] for labels that point at another version than in old_text.
    TF Serving (even with --allow_version_labels_for_unavailable_models) refuses to move an existing label to a
    version that is not AVAILABLE, and then keeps its whole old config (server_core.cc UpdateModelVersionLabelMap)."""
    before = configured_labels(old_text)
    moved = []
    for model in checked:
        for label, version in sorted(model["labels"].items()):
            old = before.get(model["name"], {}).get(label)
            if old is not None and old != version:
                moved.append((model["name"], label, old, version))
    return moved


def batching(params):
    """tf_serving.batching (dict) checked and rendered as a BatchingParameters text proto; None when not given.
    Upstream's load-time rules checked here first: allowed_batch_sizes increasing and its last entry equal to
    max_batch_size (bundle_factory_util.cc WrapSessionForBatching; batching_session.cc)."""
    if params is None:
        return None
    given = {k: v for k, v in params.items() if v is not None}
    unknown = sorted(set(given) - set(BATCHING_KEYS))
    if unknown:
        raise StackInputError("tf_serving.batching: unknown key(s) %s; known: %s" % (", ".join(unknown), ", ".join(BATCHING_KEYS)))
    lines = []
    for name, kind in BATCHING:
        if name not in given:
            continue
        value, where = given[name], "tf_serving.batching.%s" % name
        if kind in ("bool", "plain_bool"):
            if not isinstance(value, bool):
                raise StackInputError("%s: %r must be true or false" % (where, value))
            words = "true" if value else "false"
            lines.append("%s { value: %s }" % (name, words) if kind == "bool" else "%s: %s" % (name, words))
        elif kind == "ints":
            if not isinstance(value, list) or not value:
                raise StackInputError("%s: %r must be a non-empty list of sizes" % (where, value))
            sizes = [_positive_int(v, where) for v in value]
            if sizes != sorted(set(sizes)):
                raise StackInputError("%s: %r must be strictly increasing" % (where, value))
            lines += ["%s: %d" % (name, size) for size in sizes]
        elif name == "batch_timeout_micros":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise StackInputError("%s: %r must be a whole number of microseconds, 0 or more" % (where, value))
            lines.append("%s { value: %d }" % (name, value))
        else:
            lines.append("%s { value: %d }" % (name, _positive_int(value, where)))
    sizes = given.get("allowed_batch_sizes")
    if sizes:
        limit = given.get("max_execution_batch_size") if given.get("enable_large_batch_splitting") else given.get("max_batch_size")
        if limit is None or int(sizes[-1]) != int(limit):
            raise StackInputError("tf_serving.batching.allowed_batch_sizes: its last entry (%s) must equal %s (%s), as TF "
                                  "Serving requires" % (sizes[-1], "max_execution_batch_size" if given.get("enable_large_batch_splitting")
                                                        else "max_batch_size", limit))
    return "\n".join(lines) + "\n" if lines else ""


def expected_versions(policy, on_disk):
    """The versions a policy serves among those on disk (None: disk unknown). Upstream's
    FileSystemStoragePathSource: latest N = the N highest; all = every one; specific = those listed."""
    if policy[0] == "specific":  # every listed version, found or not: a missing one is worth a failure that names it
        return list(policy[1])
    if on_disk is None:
        return None
    found = sorted(on_disk, reverse=True)
    if policy[0] == "latest":
        return sorted(found[:policy[1]])
    if policy[0] == "all":
        return sorted(found)
    return sorted(v for v in policy[1] if v in found)
