"""The command line stays light: building its parser imports neither torch nor DGL, so
`crysgnn-dgl doctor` can diagnose a broken torch/DGL stack."""

import subprocess
import sys

from crysgnn_dgl.cli import COMMAND_MODULES, build_parser


def test_parser_imports_no_heavy_library():
    code = (
        "import sys; from crysgnn_dgl.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'dgl', 'lightning', 'pymatgen', 'matgl', 'alignn') "
        "if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout


def test_every_command_is_registered_with_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMAND_MODULES) == {"doctor", "pretrain", "embed", "demo", "bench"}
    for name, command in sub.choices.items():
        assert command.description, name


def test_ci_fails_when_the_shared_data_is_missing(tmp_path):
    """With CI set, a missing data folder ends the run (it does not skip most tests)."""
    import os
    from pathlib import Path

    env = dict(os.environ, CI="1", CRYSGNN_TEST_DATA=str(tmp_path / "absent"))
    tests = Path(__file__).resolve().parent
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests / "test_cli.py")],
                            capture_output=True, text=True, env=env, cwd=tests.parent, timeout=300)
    assert result.returncode != 0
    assert f"the test data folder {tmp_path / 'absent'} is missing" in result.stdout + result.stderr
