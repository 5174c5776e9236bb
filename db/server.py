"""The local Neo4j server: a real Neo4j Community process run from its own jars, no Docker needed.

It runs Neo4j's own entry point (`org.neo4j.server.CommunityEntryPoint`, what the tarball's
`neo4j console` runs) as a detached process with a pid file and a log file, everything under
CIRCUITMAP_HOME/neo4j. "Running" always means both: the recorded process is alive and Bolt answers
with our credentials; a pid file left by a killed server is treated as stale, and Neo4j's store
lock dies with its process, so a start after SIGKILL recovers the data. When NEO4J_URI is set
nothing here starts or stops anything; status reports on that server instead.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import neo4j
from neo4j.exceptions import AuthError, ServiceUnavailable

from db.config import Settings
from db.jars import DbError, Progress, install_jars, java_executable, neo4j_version

ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
ADMIN_TOOL = "org.neo4j.cli.AdminTool"
_START_MARK = "--- circuitmap db start"
# Flags the Neo4j tarball's launcher would pass (it cannot be used: it is not on Maven Central).
_JVM_FLAGS = (
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+DisableExplicitGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dlog4j2.disable.jmx=true",
    "-Dfile.encoding=UTF-8",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "-Xlog:cds=off",
    "-Xlog:cds+dynamic=off",
)


@dataclass(frozen=True)
class Layout:
    """Files of one local server, all under `<CIRCUITMAP_HOME>/neo4j`."""

    root: Path

    @property
    def lib(self) -> Path:
        return self.root / "lib"

    @property
    def conf_dir(self) -> Path:
        return self.root / "conf"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "circuitmap-neo4j.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "logs" / "console.log"

    @property
    def password_file(self) -> Path:
        return self.root / "password"

    @property
    def class_archive(self) -> Path:
        """Class-data-sharing archive of the server's classes: warm starts load ~40% faster here."""
        return self.lib / "classes.jsa"


@dataclass(frozen=True)
class Status:
    """What is true right now. state: running | starting | stopped | unreachable | auth-failed."""

    state: str
    uri: str
    pid: int | None = None
    detail: str = ""

    @property
    def running(self) -> bool:
        return self.state == "running"


def local_password(settings: Settings) -> str | None:
    """NEO4J_PASSWORD, else the password generated at the local server's first start (if any)."""
    if settings.password:
        return settings.password
    path = Layout(settings.server_dir).password_file
    return path.read_text().strip() if path.exists() else None


def status(settings: Settings) -> Status:
    """The truth about the configured server (the external one when NEO4J_URI is set)."""
    if settings.external:
        assert settings.uri is not None
        bolt = _bolt(settings.uri, settings.user, settings.password)
        state = {"ok": "running", "auth": "auth-failed"}.get(bolt, "unreachable")
        return Status(state, settings.uri, detail="external server (NEO4J_URI)")
    layout = Layout(settings.server_dir)
    pid = _recorded_pid(layout)
    if pid is None:
        return Status("stopped", settings.local_uri)
    bolt = _bolt(settings.local_uri, settings.user, local_password(settings))
    state = {"ok": "running", "auth": "auth-failed"}.get(bolt, "starting")
    detail = "Bolt answers but refuses our password" if bolt == "auth" else ""
    return Status(state, settings.local_uri, pid, detail)


def start(settings: Settings, progress: Progress = lambda _: None, timeout: float = 300) -> Status:
    """Start the local server unless it runs already; returns once Bolt answers."""
    if settings.external:
        return status(settings)
    layout = Layout(settings.server_dir)
    with _lock(layout):
        current = status(settings)
        if current.state == "stopped":
            _check_port_free(settings.port)
            java = java_executable()
            install_jars(layout.lib, progress)  # a new lib/ also drops the old class archive
            _write_config(settings, layout)
            password = _ensure_password(settings, layout, java)
            progress(f"starting Neo4j {neo4j_version()} on {settings.local_uri}")
            pid = _spawn(settings, layout, java)
        else:
            pid, password = current.pid, local_password(settings)
        assert pid is not None
        return _wait_for_bolt(settings, layout, pid, password, timeout)


def stop(settings: Settings, timeout: float = 60) -> bool:
    """Stop the local server (SIGTERM, SIGKILL after `timeout` s); False if none was running."""
    if settings.external:
        return False
    layout = Layout(settings.server_dir)
    with _lock(layout):
        pid = _recorded_pid(layout)
        if pid is None:
            return False
        with suppress(ProcessLookupError):  # it may die on its own meanwhile
            os.kill(pid, signal.SIGTERM)
            if not _wait_dead(pid, timeout):
                os.kill(pid, signal.SIGKILL)
                _wait_dead(pid, 10)
        layout.pid_file.unlink(missing_ok=True)
        return True


def log_tail(settings: Settings, lines: int = 15) -> str:
    """The last lines the server printed since the latest start."""
    path = Layout(settings.server_dir).log_file
    if not path.exists():
        return ""
    text = path.read_text(errors="replace").rsplit(_START_MARK, 1)[-1]
    return "\n".join(text.splitlines()[1:][-lines:])


def _bolt(uri: str, user: str, password: str | None) -> str:
    """'ok' when Bolt answers and accepts us, 'auth' when it answers but refuses us, else 'down'."""
    try:
        with neo4j.GraphDatabase.driver(
            uri, auth=(user, password or ""), connection_timeout=2, connection_acquisition_timeout=3
        ) as driver:
            driver.verify_connectivity()
        return "ok"
    except AuthError:
        return "auth"
    except (ServiceUnavailable, OSError):
        return "down"


def _alive(pid: int) -> bool:
    """True for a live (not zombie) process; reaps our own dead children on the way."""
    with suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"


def _recorded_pid(layout: Layout) -> int | None:
    """The pid from the pid file if that process is alive and is this home's Neo4j; else None."""
    try:
        pid = int(layout.pid_file.read_text())
    except (FileNotFoundError, ValueError):
        return None
    if _alive(pid) and _runs_home(pid, layout.root):
        return pid
    layout.pid_file.unlink(missing_ok=True)
    return None


def _runs_home(pid: int, root: Path) -> bool:
    """Whether `pid` is the server of this home (a pid may be reused after a reboot)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc (macOS): trust the pid file
    return f"--home-dir={root}".encode() in args


def _wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return not _alive(pid)


@contextmanager
def _lock(layout: Layout) -> Iterator[None]:
    """Serialise start/stop of one home (two shells or test sessions may race)."""
    layout.root.mkdir(parents=True, exist_ok=True)
    with open(layout.root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _port_answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _check_port_free(port: int, grace: float = 15) -> None:
    """Fail when something listens on the port; a server killed a moment ago gets `grace` seconds
    to finish dying (its listener outlives the pid by a little)."""
    deadline = time.monotonic() + grace
    while _port_answers(port) and time.monotonic() < deadline:
        time.sleep(0.25)
    if _port_answers(port):
        raise DbError(
            f"port {port} on 127.0.0.1 is taken by another process; stop it or set"
            " CIRCUITMAP_NEO4J_PORT to a free port"
        )


def _write_config(settings: Settings, layout: Layout) -> None:
    """neo4j.conf, rewritten on each start so that environment changes take effect."""
    address = f"127.0.0.1:{settings.port}"
    values = {
        "server.default_listen_address": "127.0.0.1",
        "server.bolt.listen_address": address,
        "server.bolt.advertised_address": address,
        "server.http.enabled": "false",
        "server.https.enabled": "false",
        "dbms.security.auth_enabled": "true",
        "dbms.usage_report.enabled": "false",
        "server.directories.data": layout.data,
        "server.directories.logs": layout.log_file.parent,
        "server.directories.run": layout.run_dir,
        "server.directories.import": layout.root / "import",
        "server.directories.plugins": layout.root / "plugins",
        "server.memory.pagecache.size": settings.pagecache,
        "db.transaction.timeout": settings.tx_timeout,
        "db.tx_log.rotation.retention_policy": "1G size",
        # Bolt's shutdown otherwise idles ~10 s waiting for connections that are already gone.
        "internal.server.bolt.connection_shutdown_wait_time": "1s",
        "internal.dbms.bolt.netty_server_shutdown_quiet_period": "0",
        "internal.dbms.bolt.netty_server_shutdown_timeout": "2s",
    }
    layout.conf_dir.mkdir(parents=True, exist_ok=True)
    layout.run_dir.mkdir(exist_ok=True)
    layout.log_file.parent.mkdir(exist_ok=True)
    lines = [
        "# Written by `circuitmap db start` on every start: set CIRCUITMAP_* env vars instead."
    ]
    lines += [f"{key}={value}" for key, value in values.items()]
    (layout.conf_dir / "neo4j.conf").write_text("\n".join(lines) + "\n")


def _server_env(layout: Layout) -> dict[str, str]:
    return {**os.environ, "NEO4J_HOME": str(layout.root), "NEO4J_CONF": str(layout.conf_dir)}


def _ensure_password(settings: Settings, layout: Layout, java: str) -> str:
    """The password, set as Neo4j's initial one before the very first start of this home."""
    password = local_password(settings)
    if password is None:
        password = secrets.token_urlsafe(18)
        fd = os.open(layout.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
    if len(password) < 8:
        raise DbError("NEO4J_PASSWORD must have at least 8 characters (Neo4j's minimum)")
    initialised = (layout.data / "dbms" / "auth.ini").exists() or (
        layout.data / "databases" / "system"
    ).exists()
    if not initialised:
        command = [java, "-cp", f"{layout.lib}/*", ADMIN_TOOL, "dbms", "set-initial-password"]
        done = subprocess.run(  # "--": a password may begin with "-" (1 in 64 generated ones)
            [*command, "--", password], env=_server_env(layout), capture_output=True, text=True
        )
        if done.returncode != 0:
            raise DbError(f"could not set the initial password: {done.stderr.strip()[-300:]}")
    return password


def _spawn(settings: Settings, layout: Layout, java: str) -> int:
    """Launch the server detached (own session, output to the log file); record its pid."""
    jars = sorted(str(p) for p in layout.lib.glob("*.jar"))
    args = [f"-Xms{settings.heap}", f"-Xmx{settings.heap}", *_JVM_FLAGS]
    if settings.class_sharing:  # the first clean stop writes the archive, later starts map it
        archive = layout.class_archive
        cds = "SharedArchiveFile" if archive.exists() else "ArchiveClassesAtExit"
        args.append(f"-XX:{cds}={archive}")
    args += ["-cp", os.pathsep.join(jars)]
    (layout.conf_dir / "jvm.args").write_text("\n".join(args) + "\n")
    command = [
        java,
        f"@{layout.conf_dir / 'jvm.args'}",
        ENTRY_POINT,
        f"--home-dir={layout.root}",
        f"--config-dir={layout.conf_dir}",
        "--console-mode",
    ]
    with open(layout.log_file, "ab") as log:
        log.write(f"{_START_MARK} {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        log.flush()
        process = subprocess.Popen(
            command,
            cwd=layout.root,
            env=_server_env(layout),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    layout.pid_file.write_text(f"{process.pid}\n")
    return process.pid


def _wait_for_bolt(
    settings: Settings, layout: Layout, pid: int, password: str | None, timeout: float
) -> Status:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            layout.pid_file.unlink(missing_ok=True)
            raise DbError(
                f"Neo4j exited during start; last lines of {layout.log_file}:\n"
                + log_tail(settings)
            )
        bolt = _bolt(settings.local_uri, settings.user, password)
        if bolt == "ok":
            return Status("running", settings.local_uri, pid)
        if bolt == "auth":
            raise DbError(
                "Neo4j refused the password: this home was initialised with another one"
                f" (see {layout.password_file} or unset NEO4J_PASSWORD)"
            )
        time.sleep(0.5)
    raise DbError(
        f"Neo4j did not answer on {settings.local_uri} in {timeout:.0f} s; see {layout.log_file}"
    )
