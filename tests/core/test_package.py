"""Package-level contracts: UI libraries stay in the UI layer; the command exists."""
import subprocess
import sys

import spikelab
from spikelab import cli


def test_import_does_not_pull_ui_libraries():
    code = (
        "import sys, spikelab, spikelab.neurons, spikelab.losses, spikelab.layers, spikelab.encoding;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('plotly', 'ipywidgets')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_version_and_help(capsys):
    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out.startswith(f"spikelab {spikelab.__version__}")
    assert cli.main([]) == 0
    assert "usage: spikelab" in capsys.readouterr().out


def test_console_script_runs():
    res = subprocess.run([sys.executable, "-m", "spikelab", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "spikelab" in res.stdout
