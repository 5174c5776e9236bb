"""Java and the Neo4j jars: find a usable JVM, and fetch the server's jars from Maven Central once.

Neo4j publishes no server tarball on Maven Central, but every jar of Community Edition is there;
Maven resolves them (with the transitive versions Neo4j itself pins) from the pom shipped beside
this module. The copy goes to a temporary folder first and is renamed when complete, so a broken
download is retried on the next start instead of leaving a half-filled lib folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from importlib import resources
from pathlib import Path

MIN_JAVA = 17
_POM = "pom.xml"
_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
_MARKER = ".complete"
_DOWNLOADED = re.compile(r"Downloaded from \S+: \S+ \(([\d.]+) (B|kB|MB|GB)")
_UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}

Progress = Callable[[str], None]


class DbError(RuntimeError):
    """A database problem the user can fix; the message says what and how."""


def neo4j_version() -> str:
    """The Neo4j version pinned in the shipped pom (the single place it is written)."""
    root = ET.fromstring(resources.files("db").joinpath(_POM).read_text())
    version = root.findtext("m:properties/m:neo4j.version", namespaces=_NS)
    assert version, "db/pom.xml lost its neo4j.version property"
    return version


def java_executable() -> str:
    """A Java 17+ `java` (JAVA_HOME first, then PATH), or a DbError saying what is missing."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home, "bin", "java") if java_home else None
    java = str(candidate) if candidate and candidate.exists() else shutil.which("java")
    if java is None:
        raise DbError(
            f"java not found: install Java {MIN_JAVA}+ (e.g. apt-get install"
            " openjdk-17-jre-headless) or set NEO4J_URI to use an existing Neo4j server"
        )
    major = _java_major(java)
    if major < MIN_JAVA:
        raise DbError(f"{java} is Java {major or '?'}; Neo4j 5.26 needs Java {MIN_JAVA} or newer")
    return java


def _java_major(java: str) -> int:
    """Major version from `java -version` ("1.8.0_x" is 8, "17.0.15" is 17); 0 if unreadable."""
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return 0
    return int(match.group(2) or 0) if match.group(1) == "1" else int(match.group(1))


def jars_ready(lib: Path) -> bool:
    marker = lib / _MARKER
    return marker.exists() and marker.read_text().strip() == neo4j_version()


def install_jars(lib: Path, progress: Progress) -> None:
    """Copy Neo4j's jars into `lib` with Maven (its local repository caches them) unless there."""
    if jars_ready(lib):
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DbError(
            "mvn not found: install Maven (e.g. apt-get install maven) to fetch the Neo4j jars"
            " once, or set NEO4J_URI to use an existing Neo4j server"
        )
    work = lib.parent
    work.mkdir(parents=True, exist_ok=True)
    pom = work / _POM
    pom.write_text(resources.files("db").joinpath(_POM).read_text())
    partial = work / "lib.partial"
    shutil.rmtree(partial, ignore_errors=True)
    command = [
        mvn, "-B", "-f", str(pom), "dependency:copy-dependencies",
        f"-DoutputDirectory={partial}", "-DincludeScope=runtime",
    ]  # fmt: skip
    progress(f"fetching Neo4j {neo4j_version()} jars from Maven Central (once)")
    began, downloaded, count, tail = time.monotonic(), 0.0, 0, []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=work
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail = [*tail[-19:], line.rstrip()]
            found = _DOWNLOADED.search(line)
            if found:
                count += 1
                downloaded += float(found.group(1)) * _UNITS[found.group(2)]
                progress(f"downloaded {count} files, {downloaded / 1e6:.1f} MB")
    if proc.returncode != 0:
        errors = [t for t in tail if "[ERROR]" in t] or tail
        raise DbError("Maven could not fetch the Neo4j jars: " + " | ".join(errors[:3]))
    seconds = time.monotonic() - began
    progress(f"fetched {count} files ({downloaded / 1e6:.1f} MB) in {seconds:.0f} s")
    (partial / _MARKER).write_text(neo4j_version())
    shutil.rmtree(lib, ignore_errors=True)
    partial.rename(lib)
