"""daemon.json as users have it: behind a symlink, with a byte-order mark (issue 13, items 2 and 3)."""

import codecs
import json
import os

import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import daemon_converge as dc
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import daemon_json as dj
from test_daemon_converge import FakeHost


pytestmark = pytest.mark.usefixtures("systemd")


@pytest.fixture
def linked(tmp_path):
    repo = tmp_path / "config-repo"
    repo.mkdir()
    target = repo / "daemon.json"
    target.write_text('{"debug": true}\n')
    os.chmod(target, 0o640)
    link = tmp_path / "daemon.json"
    link.symlink_to(target)
    return link, target


def test_symlink_is_written_through_to_its_target(linked):
    link, target = linked
    result = dc.converge(FakeHost(str(link)), str(link), {"live-restore": True}, backup=True)
    assert result["changed"] and os.path.islink(link) and os.readlink(link) == str(target)
    assert json.loads(target.read_text()) == {"debug": True, "live-restore": True}
    assert oct(os.stat(target).st_mode & 0o777) == "0o640"
    assert "symlink; written to %s" % target in result["diff"][0]["before_header"]
    assert not dc.converge(FakeHost(str(link)), str(link), {"live-restore": True})["changed"]


def test_symlink_rollback_restores_the_target_and_keeps_the_link(linked):
    link, target = linked
    with pytest.raises(dc.DaemonConfigFailed):
        dc.converge(FakeHost(str(link)), str(link), {"log-driver": "no-such-driver"}, timeout=1)
    assert os.path.islink(link) and json.loads(target.read_text()) == {"debug": True}


def test_dangling_symlink_into_a_missing_directory_refused(tmp_path):
    link = tmp_path / "daemon.json"
    link.symlink_to(tmp_path / "gone" / "daemon.json")
    with pytest.raises(dj.DaemonJsonError, match="symlink.*Nothing was written"):
        dc.converge(FakeHost(str(link)), str(link), {"debug": True})
    assert os.path.islink(link)


def test_symlink_loop_refused(tmp_path):
    link = tmp_path / "daemon.json"
    link.symlink_to(tmp_path / "other.json")
    (tmp_path / "other.json").symlink_to(link)
    with pytest.raises(dj.DaemonJsonError, match="symlink loop"):
        dc.converge(FakeHost(str(link)), str(link), {"debug": True})


@pytest.mark.parametrize("bom, codec", [(codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                                        (codecs.BOM_UTF16_BE, "utf-16-be")])
def test_byte_order_mark_read_as_dockerd_does(tmp_path, bom, codec):
    path = tmp_path / "daemon.json"
    path.write_bytes(bom + '{"debug": true}\n'.encode(codec))
    data, _raw, found = dj.load(str(path))
    assert data == {"debug": True} and found


def test_bom_file_meaning_the_same_loses_the_bom_without_a_restart(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_bytes(codecs.BOM_UTF8 + b'{"debug": true}')
    host = FakeHost(str(path))
    result = dc.converge(host, str(path), {"debug": True})
    assert result["changed"] and result["changed_keys"] == [] and not result["restarted"] and host.restarts() == 0
    assert result["diff"][0]["before"].startswith("# UTF-8 byte-order mark\n")
    assert path.read_bytes() == b'{\n  "debug": true\n}\n'
    assert not dc.converge(host, str(path), {"debug": True})["changed"]


def test_bom_file_written_back_without_it_and_the_diff_says_so(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_bytes(codecs.BOM_UTF8 + b'{"debug": true}')
    result = dc.converge(FakeHost(str(path)), str(path), {"live-restore": True}, restart="never")
    assert "written back without it" in result["diff"][0]["before_header"]
    assert path.read_bytes().startswith(b"{") and json.loads(path.read_text())["live-restore"] is True


def test_bom_file_restored_byte_for_byte_on_rollback(tmp_path):
    path = tmp_path / "daemon.json"
    content = codecs.BOM_UTF8 + b'{"debug": true}'
    path.write_bytes(content)

    class BomHost(FakeHost):
        def __call__(self, argv):
            if argv[:2] == ["systemctl", "restart"]:
                self.up = not path.read_bytes().startswith(b"{")  # only the original file "starts"
                return (0, "", "") if self.up else (1, "", "failed")
            return super().__call__(argv)

    with pytest.raises(dc.DaemonConfigFailed, match="restored"):
        dc.converge(BomHost(str(path)), str(path), {"live-restore": True}, timeout=1)
    assert path.read_bytes() == content
