import importlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_langgraph_json_points_at_a_graph_factory():
    spec = json.loads((ROOT / "langgraph.json").read_text())
    path, name = spec["graphs"]["agent"].split(":")
    module = importlib.import_module(path.removeprefix("./").removesuffix(".py").replace("/", "."))
    assert callable(getattr(module, name))
