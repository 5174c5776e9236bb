"""`circuitmap dashboard`: the command line it runs, and its checks."""

from pathlib import Path

from typer.testing import CliRunner

from cli.dashboard import APP_MAIN, streamlit_command
from cli.main import app


def test_dashboard_runs_streamlit_on_the_app():
    command = streamlit_command(8600, "0.0.0.0")
    assert command[1:4] == ["-m", "streamlit", "run"]
    assert Path(command[4]) == APP_MAIN and APP_MAIN.is_file()
    assert command[command.index("--server.port") + 1] == "8600"
    assert command[command.index("--server.address") + 1] == "0.0.0.0"


def test_dashboard_rejects_a_bad_port():
    result = CliRunner().invoke(app, ["dashboard", "--port", "70000"])
    assert result.exit_code == 2
    assert "port must be between 1 and 65535" in result.output
