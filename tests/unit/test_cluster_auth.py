"""Unit tests of intern.cluster's building blocks (token discovery, entrypoint, runtime env).
The shipped cluster files are checked in tests/unit/test_cluster_files.py and test_kuberay_manifests.py.

    pytest tests/unit/test_cluster_auth.py

No cluster is started; the one network test talks to a closed loopback port.
"""

from __future__ import annotations

import shlex
import socket
from pathlib import Path

import pytest

from intern import cluster
from intern.errors import ClusterError

TOKEN = "0123456789abcdef" * 4


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME with no Ray token and no Ray auth variables."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def write_default_token(home: Path, text: str = TOKEN) -> Path:
    path = home / ".ray" / "auth_token"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_no_token_anywhere_means_no_auth(home: Path) -> None:
    assert cluster.auth_env() == {}


def test_default_token_file_enables_token_mode(home: Path) -> None:
    path = write_default_token(home, TOKEN + "\n")
    env = cluster.auth_env()
    assert env == {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(path)}
    assert cluster._auth_headers(env) == {"Authorization": f"Bearer {TOKEN}"}


def test_empty_default_token_file_is_ignored(home: Path) -> None:
    write_default_token(home, "  \n")
    assert cluster.auth_env() == {}


def test_env_token_wins_over_files(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_default_token(home, "from-file")
    monkeypatch.setenv("RAY_AUTH_TOKEN", TOKEN)
    env = cluster.auth_env()
    assert env == {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN}
    assert cluster._auth_headers(env) == {"Authorization": f"Bearer {TOKEN}"}
    assert TOKEN not in cluster._token_source(env)


def test_token_path_variable_wins_over_default(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_default_token(home, "from-default")
    custom = home / "cluster.token"
    custom.write_text(TOKEN)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(custom))
    env = cluster.auth_env()
    assert env["RAY_AUTH_TOKEN_PATH"] == str(custom)
    assert cluster._auth_headers(env) == {"Authorization": f"Bearer {TOKEN}"}


def test_unreadable_token_path_is_reported_not_skipped(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_default_token(home)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(home / "missing"))
    env = cluster.auth_env()
    assert env["RAY_AUTH_TOKEN_PATH"] == str(home / "missing")  # like Ray: no silent fallback
    assert cluster._auth_headers(env) == {}
    assert "unreadable" in cluster._token_source(env)
    with pytest.raises(ClusterError, match="missing, unreadable or empty"):  # before Ray can abort on it
        cluster.job_status("127.0.0.1:1", "intern-x")


def test_auth_mode_disabled_turns_it_off(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_default_token(home)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert cluster.auth_env() == {}


def test_auth_mode_token_without_token_keeps_the_mode(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    assert cluster.auth_env() == {"RAY_AUTH_MODE": "token"}
    assert "none found" in cluster._token_source(cluster.auth_env())


def test_entrypoint_quotes_every_argument() -> None:
    cmd = cluster.build_entrypoint("r 1", "/mnt/out dir", True, ["brain.kind=playbook", "x='a b'"])
    argv = shlex.split(cmd)
    assert argv[:4] == ["python", "-m", "intern.cli", "run"]
    assert argv[4:] == ["--run-id", "r 1", "--output-dir", "/mnt/out dir", "--config", "config.yaml",
                        "--set", "brain.kind=playbook", "--set", "x='a b'"]
    assert "--config" not in cluster.build_entrypoint("r1", "out", False)


def test_runtime_env_ships_code_config_and_forwarded_vars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("seed: 7\n")
    stage = tmp_path / "stage"
    stage.mkdir()
    monkeypatch.setenv("INTERN_TEST_FLAG", "1")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("UNRELATED_SECRET", "x")
    env = cluster.build_runtime_env(stage, cfg)
    assert (stage / "config.yaml").read_text() == "seed: 7\n"
    assert env["working_dir"] == str(stage)
    names = [Path(p).name for p in env["py_modules"]]
    assert names[0] == "intern" and set(names) <= {"intern", "actors", "graphs"}
    assert Path(env["py_modules"][0]) == Path(cluster.__file__).resolve().parent
    assert env["env_vars"]["INTERN_TEST_FLAG"] == "1" and env["env_vars"]["WANDB_MODE"] == "offline"
    assert "UNRELATED_SECRET" not in env["env_vars"]
    assert env["env_vars"]["RAY_OVERRIDE_JOB_RUNTIME_ENV"] == "1"  # the run's ray.init may repeat them
    assert "__pycache__" in env["excludes"]


def test_runtime_env_rejects_a_missing_config(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="does not exist"):
        cluster.build_runtime_env(tmp_path, tmp_path / "nope.yaml")


def test_unreachable_dashboard_says_how_to_start_one(home: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ClusterError, match="Start a cluster") as err:
        cluster.job_status(f"http://127.0.0.1:{port}", "intern-x")
    assert "--address" in str(err.value)


def test_dashboard_url_of_a_url_needs_no_cluster() -> None:
    assert cluster.dashboard_url("http://head:8265/") == "http://head:8265"
    assert cluster.is_terminal("SUCCEEDED") and not cluster.is_terminal("RUNNING")
