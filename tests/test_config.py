"""Configuration: one typed place, validated at start, errors that name the bad key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from souverain.cli import cli
from souverain.config import DEFAULT_CHAT_MODEL, load_settings
from souverain.errors import ConfigError


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "souverain.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_no_file_means_embedded_defaults() -> None:
    settings = load_settings(environ={})
    assert settings.models[0].id == DEFAULT_CHAT_MODEL
    assert settings.server.port == 8000
    assert settings.server.host == "127.0.0.1"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, {"server": {"port": 9000, "max_body_bytes": 4096}})
    env = {"SOUVERAIN_PORT": "9100", "SOUVERAIN_SERVER__MAX_BODY_BYTES": "8192",
           "SOUVERAIN_DATA_DIR": str(tmp_path / "d")}  # fmt: skip
    settings = load_settings(path, environ=env)
    assert settings.server.port == 9100
    assert settings.server.max_body_bytes == 8192
    assert settings.data_dir == tmp_path / "d"


def test_config_file_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, {"server": {"port": 9001}})
    assert load_settings(environ={"SOUVERAIN_CONFIG": str(path)}).server.port == 9001


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"server": {"prot": 1}}, "server.prot"),
        ({"server": {"port": "high"}}, "server.port"),
        ({"models": [{"id": "m", "deployments": [{"engine": "openai"}]}]}, "models.0.deployments.0"),
        ({"models": [{"id": "m", "deployments": []}]}, "models.0.deployments"),
        ({"models": [{"id": "m", "typo": 1, "deployments": [{"engine": "local"}]}]}, "models.0.typo"),
        ({"models": [{"id": "a", "deployments": [{"engine": "local"}]},
                     {"id": "a", "deployments": [{"engine": "local"}]}]}, "declared twice"),
    ],
)  # fmt: skip
def test_errors_name_the_bad_key(tmp_path: Path, data: object, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, data), environ={})
    assert named in str(caught.value)


def test_bad_environment_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"SOUVERAIN_PORT": "not-a-port"})
    assert "server.port" in str(caught.value)


def test_unknown_engine_is_named(tmp_path: Path) -> None:
    from souverain.app import build_state

    data = {"data_dir": str(tmp_path / "d"),
            "models": [{"id": "m", "deployments": [{"engine": "warp-drive"}]}]}  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        build_state(load_settings(write(tmp_path, data), environ={}))
    assert "models.0.deployments.0.engine" in str(caught.value)
    assert "warp-drive" in str(caught.value)


def test_cli_reports_config_errors_without_a_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, {"server": {"port": -1}})
    result = subprocess.run(
        [sys.executable, "-m", "souverain", "serve", "--config", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "server.port" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_explains_every_command() -> None:
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0 and "souverain serve" in top.output
    serve = runner.invoke(cli, ["serve", "--help"])
    for option in ("--config", "--host", "--port", "--data-dir"):
        assert option in serve.output
