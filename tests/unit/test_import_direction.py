"""Imports go one way: ui -> graphs -> indexes -> agentmem (DESIGN.md)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["agentmem", "indexes", "graphs", "ui"]  # each may import only layers to its left


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_layers_import_one_way():
    bad = []
    for rank, layer in enumerate(LAYERS):
        forbidden = set(LAYERS[rank + 1 :])
        files = list((ROOT / layer).rglob("*.py"))
        assert files, f"{layer}/ has no modules"
        for f in files:
            for name in _imports(f) & forbidden:
                bad.append(f"{f.relative_to(ROOT)} imports {name}")
    assert not bad, "backwards imports:\n" + "\n".join(bad)


def test_the_checker_catches_a_backwards_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import os\nfrom graphs.agent import x\nfrom . import y\n")
    assert _imports(f) == {"os", "graphs"}
