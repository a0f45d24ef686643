"""Shared test settings."""

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def single_torch_thread():
    """The test networks are tiny: one intra-op thread avoids thread hand-offs that dominate on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _postgres_bin() -> Path | None:
    """Folder of PostgreSQL's server programs (Debian keeps them in /usr/lib/postgresql/<version>/bin)."""
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server on a loopback port for the session (as the sweeps use), its data in a
    temporary folder.

    The server refuses to run as root, so as root its programs run as the ``postgres`` user (``runuser``).
    Yields a SQLAlchemy URL of an empty database; stops the server and removes the folder afterwards.
    """
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs it: apt-get install -y postgresql)")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.mkdtemp(prefix="sb3-hypernet-pg-"))
    if as_postgres:
        shutil.chown(data, "postgres", "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def run(*command: str) -> None:
        result = subprocess.run([*as_postgres, *command], capture_output=True, text=True, timeout=120)
        if result.returncode:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")

    run(str(bin_dir / "initdb"), "-D", str(data / "db"), "-U", "postgres", "-A", "trust", "--no-sync")
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(bin_dir / "pg_ctl"), "-D", str(data / "db"), "-l", str(data / "server.log"), "-o", options, "-w", "start")
    try:
        run(str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c", "CREATE DATABASE sweeps")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/sweeps"
    finally:
        subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"],
                       capture_output=True, timeout=120)  # fmt: skip
        shutil.rmtree(data, ignore_errors=True)
