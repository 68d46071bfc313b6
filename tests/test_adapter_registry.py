"""Adding a predictor without editing the package: the ``Adapter`` interface and
``register_adapter`` (the example of docs/distillation.md runs as written), and how
``attach_teacher`` treats ``settings=`` next to keywords and a failing ``on_attach``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from pymatgen.core import Lattice, Structure

import crysgnn_dgl
from crysgnn_dgl.distill import ADAPTERS, DistillSettings
from crysgnn_dgl.models.cgcnn import CGCNN

DOCS = Path(__file__).resolve().parents[1] / "docs" / "distillation.md"


@pytest.fixture
def registry():
    """The adapter registry, restored after the test."""
    saved = dict(ADAPTERS)
    yield ADAPTERS
    ADAPTERS.clear()
    ADAPTERS.update(saved)


def _docs_example() -> str:
    text = DOCS.read_text()
    match = re.search(r"<!-- register-adapter-example.*?-->\n```python\n(.*?)```", text, re.S)
    assert match, "the register_adapter example is missing from docs/distillation.md"
    return match.group(1)


def test_docs_example_registers_and_distils(registry, capsys):
    namespace: dict = {"__name__": "docs_example"}
    exec(compile(_docs_example(), str(DOCS), "exec"), namespace)
    hook = namespace["hook"]
    assert hook.removed and hook.last_kd is not None and hook.last_kd > 0
    assert "adapter='tiny'" in capsys.readouterr().out
    assert registry["tiny"] is namespace["TinyAdapter"]
    model = namespace["TinyPredictor"]()
    named = crysgnn_dgl.attach_teacher(model, adapter="tiny")
    assert named.adapter.name == "tiny" and isinstance(named.adapter, namespace["TinyAdapter"])
    named.remove()
    with pytest.raises(ValueError, match="adapter 'tiny' does not match"):
        crysgnn_dgl.attach_teacher(CGCNN(), adapter="tiny")


def test_register_adapter_refuses_bad_entries(registry):
    class Incomplete(crysgnn_dgl.Adapter):
        pass

    with pytest.raises(TypeError):
        Incomplete()  # hook_point and crystal_batch are abstract
    with pytest.raises(TypeError, match="subclass of crysgnn_dgl.Adapter"):
        crysgnn_dgl.register_adapter("plain", object)
    with pytest.raises(ValueError, match="other than 'auto'"):
        crysgnn_dgl.register_adapter("auto", Incomplete)
    with pytest.raises(ValueError, match="already registered as 'cgcnn'"):
        crysgnn_dgl.register_adapter("cgcnn", Incomplete)
    assert crysgnn_dgl.register_adapter("cgcnn", Incomplete, replace=True) is Incomplete


def test_settings_and_contradicting_keywords_are_refused():
    model = CGCNN()
    settings = DistillSettings(delta=0.25, projection="mlp")
    with pytest.raises(ValueError, match=r"delta=0.5 \(settings: 0.25\)"):
        crysgnn_dgl.attach_teacher(model, delta=0.5, settings=settings)
    assert not hasattr(model, "crysgnn_distill_head")
    hook = crysgnn_dgl.attach_teacher(model, delta=0.25, projection="mlp", settings=settings)  # agreeing
    assert hook.settings is settings
    hook.remove()
    hook = crysgnn_dgl.attach_teacher(model, delta=0.2)
    assert hook.settings == DistillSettings(delta=0.2)
    hook.remove()


def test_failing_on_attach_leaves_the_model_as_it_was():
    from crysgnn_dgl.adapters.cgcnn import CGCNNPortAdapter

    class Failing(CGCNNPortAdapter):
        def on_attach(self, model, hook):
            raise RuntimeError("wiring failed")

    model = CGCNN()
    keys = list(model.state_dict())
    with pytest.raises(RuntimeError, match="wiring failed"):
        crysgnn_dgl.attach_teacher(model, adapter=Failing())
    assert list(model.state_dict()) == keys
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    hook = crysgnn_dgl.attach_teacher(model)  # attachable again
    structure = Structure(Lattice.cubic(4.1), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    model(crysgnn_dgl.build_graph(structure)).sum().backward()
    assert hook.last_kd is not None
    hook.remove()
    assert isinstance(hook.adapter, crysgnn_dgl.Adapter) and torch.is_tensor(next(model.parameters()))
