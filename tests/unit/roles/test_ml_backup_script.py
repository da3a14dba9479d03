"""The ml_backup role's backup script (templates/backup.sh.j2), rendered by Ansible's own templar with the
role's defaults and vars, then run against a temporary directory with a fake `docker` on PATH.

The fake docker answers only what the script asks, as the real CLI does: `inspect -f {{.State.Running}}`
prints true/false (exit 1 for a missing container), `volume inspect -f {{.Mountpoint}}` prints the volume's
directory (exit 1 when there is none), `exec <postgres> pg_dump|pg_dumpall` write a stand-in dump to stdout.
GNU tar is the real one; its "file changed as we read it" case (exit 1, archive complete) comes from a
wrapper that runs the real tar, then exits 1 with tar's warning, as tar 1.34's create does (src/create.c)."""

import os
import sqlite3
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROLE = Path(__file__).resolve().parents[3] / "roles" / "ml_backup"
FAKE_DOCKER = r"""#!/bin/sh
# Fake docker CLI for the backup script's tests (see the module docstring).
state="$FAKE_DOCKER_STATE"
echo "$*" >> "$state/calls"
case "$1" in
  inspect)  # docker inspect -f '{{.State.Running}}' NAME
    [ -e "$state/containers/$4" ] || { echo "Error: No such object: $4" >&2; exit 1; }
    cat "$state/containers/$4";;
  volume)   # docker volume inspect -f '{{.Mountpoint}}' NAME
    [ -d "$state/volumes/$5" ] || { echo "Error: no such volume: $5" >&2; exit 1; }
    echo "$state/volumes/$5";;
  exec)
    shift; container="$1"; shift
    [ "$(cat "$state/containers/$container" 2>/dev/null)" = true ] || { echo "container $container is not running" >&2; exit 1; }
    case "$1" in
      pg_dump) echo "PGDMP dump of $container";;
      pg_dumpall) echo "-- globals of $container";;
      tar) echo "tar: ./model.txt: file changed as we read it" >&2; exit 1;;
      *) echo "fake docker: exec $* not faked" >&2; exit 99;;
    esac;;
  *) echo "fake docker: $* not faked" >&2; exit 99;;
esac
"""
CHANGING_TAR = r"""#!/bin/sh
# GNU tar when a file changes while it is read: the archive is written, a warning, exit status 1.
/usr/bin/tar "$@" || exit $?
case " $* " in *" --warning=no-file-changed "*) ;; *) echo "tar: ./model.txt: file changed as we read it" >&2;; esac
exit 1
"""
GENERATED = ["20260101T030000Z", "20260102T030000Z", "20260103T030000Z"]


def role_vars(**overrides):
    variables = {}
    for name in ("defaults/main.yml", "vars/main.yml"):
        for key, value in yaml.safe_load((ROLE / name).read_text()).items():
            variables[key] = trust_as_template(value) if isinstance(value, str) else value
    variables.update({"inventory_hostname": "host1", "groups": {"ml_db": ["host1"], "ml_tracking": ["host1"]},
                      "playbook_dir": "/nonexistent"})
    variables.update(overrides)
    return variables


def render(**overrides):
    text = (ROLE / "templates" / "backup.sh.j2").read_text()
    return Templar(loader=DataLoader(), variables=role_vars(**overrides)).template(trust_as_template(text))


class Host:
    """A temporary 'host': backup dir, fake docker state, PATH with the fakes first."""

    def __init__(self, tmp_path, **overrides):
        self.tmp = tmp_path
        self.dir = tmp_path / "backups"
        self.root = self.dir / "mlstack"
        self.state = tmp_path / "docker"
        (self.state / "containers").mkdir(parents=True)
        (self.state / "volumes").mkdir()
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.fake("docker", FAKE_DOCKER)
        self.script = tmp_path / "mlinfra-backup-mlstack"
        self.script.write_text(render(ml_backup_dir=str(self.dir), **overrides))
        self.script.chmod(0o700)

    def fake(self, name, text):
        (self.bin / name).write_text(text)
        (self.bin / name).chmod(0o755)

    def container(self, name, running=True):
        (self.state / "containers" / name).write_text("true\n" if running else "false\n")

    def volume(self, name, files=None):
        path = self.state / "volumes" / name
        path.mkdir(parents=True, exist_ok=True)
        for rel, data in (files or {}).items():
            (path / rel).parent.mkdir(parents=True, exist_ok=True)
            (path / rel).write_bytes(data)
        return path

    def stack(self, postgres=True, mlflow=True):
        self.container("mlstack-postgres", postgres)
        self.container("mlstack-mlflow", mlflow)
        self.volume("mlstack-mlflow-artifacts", {"1/run/artifacts/model.txt": b"weights"})

    def run(self, *args, **env):
        environ = {**os.environ, "PATH": "%s:%s" % (self.bin, os.environ["PATH"]), "FAKE_DOCKER_STATE": str(self.state),
                   **env}
        return subprocess.run(["/bin/sh", str(self.script), *args], capture_output=True, text=True, env=environ,
                              timeout=60, check=False)

    def names(self):
        return sorted(p.name for p in self.root.iterdir()) if self.root.exists() else []


def test_a_backup_has_the_database_the_globals_the_artifacts_and_their_checksums(tmp_path):
    host = Host(tmp_path)
    host.stack()
    done = host.run("b1")
    assert done.returncode == 0, done.stderr
    assert host.names() == ["b1"]
    files = sorted(p.name for p in (host.root / "b1").iterdir())
    assert files == ["SHA256SUMS", "artifacts.tar.gz", "database.dump", "globals.sql"]
    sums = subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=host.root / "b1", capture_output=True,
                          text=True, check=False)
    assert sums.returncode == 0, sums.stdout
    with tarfile.open(host.root / "b1" / "artifacts.tar.gz") as archive:
        assert archive.extractfile("./1/run/artifacts/model.txt").read() == b"weights"
    assert stat.S_IMODE((host.root / "b1" / "globals.sql").stat().st_mode) == 0o600


def test_retention_prunes_only_generated_names_oldest_by_name_never_named_backups(tmp_path):
    host = Host(tmp_path, ml_backup_keep=2)
    host.stack()
    host.root.mkdir(parents=True)
    # mtimes opposite to the names' order: retention must go by the name (the time the script wrote in it)
    for age, name in enumerate(["pre-upgrade"] + GENERATED[::-1]):
        (host.root / name).mkdir()
        os.utime(host.root / name, (1_000_000 - age * 1000, 1_000_000 - age * 1000))
    done = host.run(MLINFRA_BACKUP_NAME="20260104T030000Z")
    assert done.returncode == 0, done.stderr
    assert host.names() == ["20260103T030000Z", "20260104T030000Z", "pre-upgrade"]
    # a named run prunes generated names only, and a named backup never counts against them
    assert host.run("before-migration").returncode == 0
    assert host.names() == ["20260103T030000Z", "20260104T030000Z", "before-migration", "pre-upgrade"]


def test_retention_keeps_partial_and_unrelated_entries(tmp_path):
    host = Host(tmp_path, ml_backup_keep=1)
    host.stack()
    host.root.mkdir(parents=True)
    for name in (".partial-20250101T000000Z", "notes.txt", "2026", "20260101T030000Z.old"):
        (host.root / name).touch()
    assert host.run(MLINFRA_BACKUP_NAME=GENERATED[0]).returncode == 0
    assert host.run(MLINFRA_BACKUP_NAME=GENERATED[1]).returncode == 0
    assert host.names() == sorted([".partial-20250101T000000Z", "2026", GENERATED[1], "20260101T030000Z.old", "notes.txt"])


def test_an_existing_backup_dir_keeps_its_mode_what_the_script_creates_is_root_only(tmp_path):
    host = Host(tmp_path)
    host.stack()
    host.dir.mkdir(mode=0o755)
    host.dir.chmod(0o755)  # like /var/backups
    assert host.run("b1").returncode == 0
    assert stat.S_IMODE(host.dir.stat().st_mode) == 0o755
    assert stat.S_IMODE(host.root.stat().st_mode) == 0o700
    assert stat.S_IMODE((host.root / "b1").stat().st_mode) == 0o700


def test_the_database_dump_does_not_need_mlflow_running(tmp_path):
    host = Host(tmp_path)
    host.stack(mlflow=False)  # a crash-looping MLflow
    done = host.run("b1")
    assert done.returncode == 0, done.stderr
    assert (host.root / "b1" / "database.dump").read_text().startswith("PGDMP")
    with tarfile.open(host.root / "b1" / "artifacts.tar.gz") as archive:  # read from the volume, not the container
        assert archive.extractfile("./1/run/artifacts/model.txt").read() == b"weights"


def test_a_db_only_host_needs_only_postgres(tmp_path):
    host = Host(tmp_path, groups={"ml_db": ["host1"], "ml_tracking": ["host2"]})
    host.container("mlstack-postgres")
    done = host.run("b1")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (host.root / "b1").iterdir()) == ["SHA256SUMS", "database.dump", "globals.sql"]


def test_a_file_changed_while_archived_does_not_fail_the_backup(tmp_path):
    host = Host(tmp_path)
    host.stack()
    host.fake("tar", CHANGING_TAR)
    done = host.run("b1")
    assert done.returncode == 0, done.stderr
    assert "file changed as we read it" not in done.stderr
    with tarfile.open(host.root / "b1" / "artifacts.tar.gz") as archive:
        assert archive.extractfile("./1/run/artifacts/model.txt").read() == b"weights"


def test_a_failing_tar_fails_the_backup_and_leaves_nothing(tmp_path):
    host = Host(tmp_path)
    host.stack()
    host.fake("tar", "#!/bin/sh\necho 'tar: cannot open: Permission denied' >&2\nexit 2\n")
    done = host.run("b1")
    assert done.returncode != 0
    assert host.names() == []


def test_mlflow_users_are_backed_up_with_sqlites_backup_api(tmp_path):
    host = Host(tmp_path, ml_stack_mlflow_basic_auth=True)
    host.stack(mlflow=False)
    auth = host.volume("mlstack-mlflow-auth") / "basic_auth.db"
    with sqlite3.connect(auth) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT, password_hash TEXT)")
        db.execute("INSERT INTO users (username, password_hash) VALUES ('admin', 'h1'), ('alice', 'h2')")
    db.close()
    done = host.run("b1")
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in (host.root / "b1").iterdir())
    assert names == ["SHA256SUMS", "artifacts.tar.gz", "database.dump", "globals.sql", "mlflow-auth.db"]
    copy = sqlite3.connect(host.root / "b1" / "mlflow-auth.db")
    assert copy.execute("SELECT username FROM users ORDER BY id").fetchall() == [("admin",), ("alice",)]
    copy.close()
    assert "mlflow-auth.db" in (host.root / "b1" / "SHA256SUMS").read_text()


def test_users_expected_but_missing_fail_before_anything_is_written(tmp_path):
    host = Host(tmp_path, ml_stack_mlflow_basic_auth=True)
    host.stack()
    done = host.run("b1")
    assert done.returncode != 0 and "mlstack-mlflow-auth" in done.stderr and "nothing was written" in done.stderr
    assert not host.dir.exists()


@pytest.mark.parametrize("how", [("--check", "b1"), ("b1",)])
def test_check_mode_and_a_stopped_postgres_write_nothing(tmp_path, how):
    host = Host(tmp_path)
    host.stack(postgres="--check" in how)
    done = host.run(*how)
    if "--check" in how:
        assert done.returncode == 0 and "would write" in done.stdout
    else:
        assert done.returncode != 0 and "mlstack-postgres is not running" in done.stderr
    assert not host.dir.exists()
