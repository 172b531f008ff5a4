"""The Dockerfile keeps its promises (no Docker engine here: read it, and run its HEALTHCHECK command)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from daemon.http_server import Heartbeat, HttpServer

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "Dockerfile").read_text(encoding="utf-8")
LINES = [line for line in TEXT.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]


def instructions(name: str) -> list[str]:
    return [line.split(None, 1)[1] for line in LINES if line.split(None, 1)[0] == name]


def test_multi_stage_on_a_slim_python_base() -> None:
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in TEXT
    stages = instructions("FROM")
    assert stages == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    runtime = TEXT.split("\nFROM ${PYTHON_IMAGE}\n", 1)[1]
    assert "--no-index --find-links /wheels crisisd" in runtime  # only the wheels stage 1 built
    assert "COPY" not in runtime and "apt-get" not in runtime  # no sources, no build tools


def test_runs_as_a_non_root_user_with_exec_form_entrypoint() -> None:
    assert instructions("USER") == ["10001:10001"]
    assert json.loads(instructions("ENTRYPOINT")[0]) == ["crisisd"]
    assert json.loads(instructions("CMD")[-1]) == ["run"]
    assert instructions("EXPOSE") == ["8080"]
    assert json.loads(instructions("VOLUME")[0]) == ["/var/lib/crisisd"]
    assert "CRISISD_STATE_DIR=/var/lib/crisisd" in TEXT
    labels = " ".join(instructions("LABEL"))
    for key in ("title", "description", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_the_smoke_script_runs_the_dockerfile_commands() -> None:
    smoke = (ROOT / ".ci" / "container-smoke").read_text(encoding="utf-8")
    assert "pip wheel" in TEXT and "pip wheel" in smoke
    assert "--no-index --find-links" in smoke and "crisisd --version" in smoke and "check-config" in smoke
    copied = {part for line in instructions("COPY") for part in line.split()[:-1]}
    assert copied == {
        "pyproject.toml",
        "setup.cfg",
        "README.md",
        "requirements.lock",
        "config",
        "daemon",
        "detectors",
        "notifiers",
    }
    assert "cp pyproject.toml setup.cfg README.md requirements.lock" in smoke
    assert "cp -r config daemon detectors notifiers" in smoke
    assert "bash .ci/container-smoke" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def healthcheck() -> list[str]:
    match = re.search(r"\bCMD (\[.*\])", " ".join(instructions("HEALTHCHECK")))
    assert match is not None
    command: list[str] = json.loads(match.group(1))
    return command


def test_the_healthcheck_command_passes_while_alive_and_fails_when_stalled_or_down() -> None:
    command = healthcheck()
    assert command[:2] == ["python", "-c"] and "/healthz" in command[2]
    beat = Heartbeat(stall_seconds=3600)
    with HttpServer("127.0.0.1", 0, readiness=lambda: {"ok": True}, liveness=beat) as server:
        env = {**os.environ, "CRISISD_HTTP_PORT": str(server.port)}
        run = [sys.executable, *command[1:]]
        assert subprocess.run(run, env=env, capture_output=True, check=False).returncode == 0
        beat.stall_seconds = -1.0  # the loop counts as stalled
        assert subprocess.run(run, env=env, capture_output=True, check=False).returncode != 0
        port = server.port
    env = {**os.environ, "CRISISD_HTTP_PORT": str(port)}
    assert subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, check=False).returncode != 0


def test_the_image_is_built_with_the_lock_of_exactly_the_runtime_dependencies() -> None:
    """Stage 1 (and the smoke script) build the dependencies from requirements.lock in pip's
    hash-checking mode and crisisd without resolving them again; the lock pins one version of each
    runtime dependency with the sha256 of its files, and every range of setup.cfg's install_requires
    admits its pin (a dependency added to setup.cfg without `bash .ci/lock` fails here). The smoke
    script checks the rest: that the build passes the hash check and the install holds exactly the
    pinned versions."""
    import configparser
    import re

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    run = " ".join(instructions("RUN"))
    assert "pip wheel --no-cache-dir --require-hashes --wheel-dir /wheels -r requirements.lock" in run
    assert "pip wheel --no-cache-dir --no-deps --wheel-dir /wheels ." in run
    smoke = (ROOT / ".ci" / "container-smoke").read_text(encoding="utf-8")
    assert '--require-hashes --wheel-dir "$work/wheels" -r requirements.lock' in smoke
    assert '--no-deps --wheel-dir "$work/wheels" .)' in smoke
    pins: dict[str, str] = {}
    text = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    # one requirement per logical line: `name==version \` then its `--hash=sha256:...` lines
    for entry in re.sub(r"\\\n", " ", text).splitlines():
        if not entry.strip() or entry.startswith("#"):
            continue
        pin, *hashes = entry.split()
        name, version = pin.split("==")
        assert canonicalize_name(name) not in pins, f"{name} pinned twice"
        assert hashes and all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", h) for h in hashes), f"{name}: hashes"
        pins[canonicalize_name(name)] = version
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    for spec in cfg["options"]["install_requires"].split("\n"):
        if not spec.strip():
            continue
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements.lock: run bash .ci/lock"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req.name}=={pins[name]} outside {spec}"
