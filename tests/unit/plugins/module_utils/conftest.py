import pytest

from fake_dockerd import FakeDockerd


@pytest.fixture
def dockerd(tmp_path):
    with FakeDockerd(tmp_path / "docker.sock") as fake:
        yield fake
