"""One error root: every exception class in module_utils derives from MlinfraError, so a module's one
`except MlinfraError` sees them all (with their machine-readable extras)."""

import importlib
import inspect
import pathlib

import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import errors

ROOT = pathlib.Path(errors.__file__).parent
MODULES = sorted("ansible_collections.mlinfra.docker_ml.plugins.module_utils." +
                 ".".join(p.relative_to(ROOT).with_suffix("").parts)
                 for p in ROOT.rglob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("name", MODULES)
def test_every_error_class_has_the_one_root(name):
    module = importlib.import_module(name)
    for _cls_name, cls in inspect.getmembers(module, inspect.isclass):
        if cls.__module__ == name and issubclass(cls, BaseException):
            assert issubclass(cls, errors.MlinfraError), "%s.%s" % (name, cls.__name__)


def test_extras_and_the_input_error_lead():
    exc = errors.InputError("x: bad", hint=1)
    assert exc.extra == {"hint": 1}
    assert ": invalid input, nothing was changed: x: bad" in errors.failure_message("m", exc)
    assert errors.failure_message("m", errors.MlinfraError("boom")).endswith(": boom")
