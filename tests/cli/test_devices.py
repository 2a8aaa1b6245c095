from typer.testing import CliRunner

from medtk.cli import app
from medtk.devices import list_profiles


def test_devices_lists_every_profile_with_aliases():
    result = CliRunner().invoke(app, ["devices"])
    assert result.exit_code == 0, result.output
    for profile in list_profiles():
        assert profile.name in result.output
    assert "jetson, orin-nano" in result.output
