"""CHGNet (optional extra ``crysgnn_dgl[chgnet]``) as a frozen teacher: the 64-d atom
features ``atom_fea`` (before CHGNet's last atom convolution), one forward per batch.

The weights are those the ``chgnet`` wheel ships (``0.3.0`` by default; ``chgnet:0.2.0``,
``chgnet:r2scan``), loaded weights-only. chgnet imports ``nvidia_smi`` (package
``nvidia-ml-py3``) when it is imported; where that module is absent (a CPU machine), an
inert stand-in is registered first: the teacher never asks for GPU memory.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
import types
from pathlib import Path
from typing import Any

import torch

from ..optional import require
from .protocol import Crystals, StructureTeacher, freeze, stay_in_eval

DEFAULT_VERSION = "0.3.0"
_PURPOSE = "the chgnet teacher"
_INSTALL = "crysgnn_dgl[chgnet]"


def _import_chgnet() -> Any:
    """``chgnet.model`` (a one-line error naming the extra when chgnet is missing)."""
    require("chgnet", _PURPOSE, _INSTALL)
    try:
        importlib.import_module("nvidia_smi")
    except ImportError:
        stand_in = types.ModuleType("nvidia_smi")
        stand_in.__doc__ = "crysgnn_dgl stand-in: chgnet imports nvidia_smi, the CHGNet teacher never calls it"
        sys.modules["nvidia_smi"] = stand_in
    return require("chgnet.model", _PURPOSE, _INSTALL)


def checkpoint_path(version: str) -> Path:
    """The checkpoint the chgnet package ships for ``version`` (``0.3.0``, ``0.2.0``, ``r2scan``)."""
    spec = importlib.util.find_spec("chgnet")
    folder = Path(spec.origin).parent / "pretrained" / version if spec and spec.origin else None
    files = sorted(folder.glob("*.pth.tar")) if folder and folder.is_dir() else []
    if not files:
        raise ValueError(f"chgnet ships no pre-trained model {version!r}; try 0.3.0, 0.2.0 or r2scan")
    return files[0]


class CHGNetTeacher(StructureTeacher):
    """Frozen CHGNet: per-atom ``atom_fea`` (not an ``nn.Module``: never a submodule of the
    student; evaluation mode that ``train()`` cannot undo; no gradients)."""

    recommended_kd_weight = 100.0  # chosen on validation gain with CGCNN on 2 of 3 tasks (docs/benchmarks.md §7)

    # ``model``: a chgnet ``CHGNet`` (an ``nn.Module``; chgnet is an optional extra, not imported for its type)
    def __init__(self, model: Any, version: str = DEFAULT_VERSION, source: str = ""):
        self._model = freeze(model)
        self.version = version
        self.source = source
        self.embedding_dim = int(model.model_args["atom_fea_dim"])
        self._fingerprint: bytes | None = None

    def fingerprint(self) -> bytes:
        if self._fingerprint is None:
            from ..distill.keys import teacher_fingerprint

            settings = {"teacher": "chgnet", "version": self.version, "features": "atom_fea",
                        "model_args": repr(sorted(self._model.model_args.items()))}
            self._fingerprint = teacher_fingerprint(self._model.state_dict(), settings)
        return self._fingerprint

    @torch.no_grad()
    def embed_crystals(self, crystals: Crystals) -> torch.Tensor:
        """``(Σ atoms, 64)`` atom features, atoms in order; one CHGNet forward for the batch."""
        if len(crystals) == 0:
            return torch.zeros(0, self.embedding_dim)
        from ..distill.targets import TeacherInputError

        model = stay_in_eval(self._model)
        graphs = []
        for i, structure in enumerate(crystals.structures()):
            try:
                graphs.append(model.graph_converter(structure, graph_id=crystals.names[i]).to(self.device))
            except Exception as error:  # noqa: BLE001 - chgnet refuses isolated atoms, unknown elements, ...
                raise TeacherInputError(f"{crystals.names[i]}: CHGNet cannot build its graph ({error})") from error
        output = model(graphs, task="e", return_atom_feas=True)
        return torch.cat(list(output["atom_fea"]))

    def __repr__(self) -> str:
        return f"CHGNetTeacher(version={self.version!r}, dim={self.embedding_dim}, source={self.source!r})"


def load_chgnet(version: str | None = None, device: str | torch.device = "cpu") -> CHGNetTeacher:
    """The frozen CHGNet teacher from the weights the chgnet wheel ships."""
    chgnet_model = _import_chgnet()
    version = version or DEFAULT_VERSION
    path = checkpoint_path(version)
    state = torch.load(path, map_location="cpu", weights_only=True)
    with contextlib.redirect_stdout(io.StringIO()):  # CHGNet announces itself on stdout
        model = chgnet_model.CHGNet.from_dict(state["model"], mlp_out_bias=version == "0.2.0", version=version)
    return CHGNetTeacher(model, version, source=str(path)).to(device)
