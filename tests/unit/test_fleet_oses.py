"""The fleet's host OS choice and the debootstrap command lines it leads to (pure; no network)."""

import pytest

from tests.fleet import oses
from tests.fleet.local_docker import FleetError
from tests.fleet.images import _base_tag, context_hash


@pytest.mark.parametrize("spec, hosts, expected", [
    ("", 3, ["bookworm"] * 3),
    ("jammy,noble", 2, ["jammy", "noble"]),
    ("noble", 3, ["noble", "bookworm", "bookworm"]),
    (" jammy , ", 1, ["jammy"]),
])
def test_parse_oses(spec, hosts, expected):
    assert oses.parse_oses(spec, hosts) == expected


@pytest.mark.parametrize("spec, hosts, words", [("focal", 1, "unknown host OS ['focal']"), ("jammy,noble", 1, "2 host OSes")])
def test_parse_oses_refuses(spec, hosts, words):
    with pytest.raises(FleetError, match=words.replace("[", r"\[").replace("]", r"\]")):
        oses.parse_oses(spec, hosts)


def test_bookworm_command_and_tag_unchanged():
    expected = ["debootstrap", "--variant=minbase", "bookworm", "/r", oses.DEBIAN_MIRROR]
    assert oses.debootstrap_command("bookworm", "/r", "/tmp") == expected
    assert _base_tag("bookworm") == "mlinfra-fleet/base:" + context_hash("debootstrap", "minbase", "bookworm", oses.DEBIAN_MIRROR)


def test_ubuntu_commands_verify_with_the_archive_keyring(monkeypatch, tmp_path):
    keyring = tmp_path / "ubuntu-archive-keyring.gpg"
    monkeypatch.setattr(oses, "ubuntu_keyring", lambda cache_root, log: keyring)
    jammy = oses.debootstrap_command("jammy", "/r", tmp_path)
    noble = oses.debootstrap_command("noble", "/r", tmp_path)
    assert jammy == ["debootstrap", "--variant=minbase", "--components=main,universe", f"--keyring={keyring}",
                     "jammy", "/r", oses.UBUNTU_MIRROR]
    assert noble[-1] == "/usr/share/debootstrap/scripts/gutsy" and noble[-4:-1] == ["noble", "/r", oses.UBUNTU_MIRROR]
    assert not any("no-check" in word for word in jammy + noble)
    assert len({_base_tag(name) for name in oses.OSES}) == 3


def test_a_tampered_keyring_package_is_refused(monkeypatch, tmp_path):
    class Answer:  # what urlopen returns: a context manager with read()
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return b"not the pinned package"
    monkeypatch.setattr(oses.urllib.request, "urlopen", lambda url, timeout: Answer())
    with pytest.raises(FleetError, match="refusing to trust it"):
        oses.ubuntu_keyring(tmp_path, log=lambda m: None)
    assert not (tmp_path / f"ubuntu-keyring-{oses.KEYRING_SHA256[:12]}" / "ubuntu-keyring.deb").exists()
