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
