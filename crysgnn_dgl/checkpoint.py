"""Versioned CrysGNN checkpoints, saved and loaded weights-only.

A checkpoint is a ``dict`` of built-in types and tensors::

    {"format": "crysgnn_dgl.checkpoint", "format_version": 1,
     "state_dict": {...}, "model_settings": {...}, "graph_settings": {...},
     "training": {...}}

The original CrysGNN release format (``{"state_dict": ...}`` or a bare state dict with
``embedding.weight``, ``convs.{k}.fc_full.weight``, ...) is read too; its settings are
inferred from the weight shapes, its featuriser is the release's (the defaults).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import GraphSettings, ModelSettings
from .models.crysgnn import CrysGNN

FORMAT_NAME = "crysgnn_dgl.checkpoint"
FORMAT_VERSION = 1
REFERENCE_SOURCE = "CrysGNN release"


class CheckpointError(ValueError):
    """A checkpoint file cannot be used; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"checkpoint {self.path!r}: {reason}")


@dataclass
class Checkpoint:
    """A checkpoint's content after validation."""

    state_dict: dict[str, torch.Tensor]
    model_settings: ModelSettings
    graph_settings: GraphSettings
    training: dict[str, Any] = field(default_factory=dict)
    source: str = FORMAT_NAME


def save_checkpoint(
    path: str | os.PathLike, model: CrysGNN, training: dict[str, Any] | None = None
) -> Path:
    """Write ``model`` atomically (temporary file, then rename) in the versioned format."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_settings": model.model_settings.to_dict(),
        "graph_settings": model.graph_settings.to_dict(),
        "training": dict(training or {}),
    }
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(payload, temporary)
    os.replace(temporary, path)
    return path


def _load_raw(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(path, "no such file")
    if path.stat().st_size == 0:
        raise CheckpointError(path, "file is empty")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc)
        if "weights_only" in text or "Unsupported global" in text:
            reason = (
                "it holds pickled Python objects beyond tensors and plain containers; "
                "only weights-only checkpoints are loaded (re-save model.state_dict())"
            )
        else:
            reason = f"truncated or corrupt ({type(exc).__name__}: {text.splitlines()[0][:200]})"
        raise CheckpointError(path, reason) from exc


def _is_reference_state_dict(candidate: Any) -> bool:
    return (
        isinstance(candidate, dict)
        and "embedding.weight" in candidate
        and "convs.0.fc_full.weight" in candidate
    )


def _strip_prefix(state_dict: dict[str, Any]) -> dict[str, Any]:
    if all(k.startswith("module.") for k in state_dict):
        return {k[len("module.") :]: v for k, v in state_dict.items()}
    return state_dict


def _reference_checkpoint(path: Path, state_dict: dict[str, torch.Tensor]) -> Checkpoint:
    embedding = state_dict["embedding.weight"]
    hidden, atom_input = embedding.shape
    conv_ids = {int(m.group(1)) for k in state_dict if (m := re.match(r"convs\.(\d+)\.", k))}
    edge_dim = state_dict["convs.0.fc_full.weight"].shape[1] - 2 * hidden
    graph = GraphSettings()
    if edge_dim != graph.num_gaussians:
        raise CheckpointError(
            path,
            f"release-format weights expect {edge_dim} edge features; the release featuriser "
            f"has {graph.num_gaussians}",
        )
    model = ModelSettings(
        atom_input_dim=atom_input,
        hidden_dim=hidden,
        num_conv=len(conv_ids),
        num_connectivity_classes=state_dict["fc1.weight"].shape[0],
        num_space_groups=state_dict["fc_sg.weight"].shape[0],
        contrastive_projection=False,
    )
    return Checkpoint(state_dict, model, graph, {}, source=REFERENCE_SOURCE)


def _check_finite(path: Path, state_dict: dict[str, Any]) -> None:
    """Refuse weights holding NaN or infinite values (a diverged run)."""
    bad = [
        name for name, value in state_dict.items()
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]
    if bad:
        raise CheckpointError(
            path,
            f"weights hold NaN or infinite values ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}): "
            "the run that wrote it diverged; use an earlier epoch's checkpoint or retrain with a lower learning rate",
        )


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load and validate a checkpoint file (either format) without building a model.

    Raises :class:`CheckpointError` naming the file for a missing, empty, corrupt or
    code-executing file, an unknown format or version, and NaN or infinite weights.
    """
    checkpoint = _read_unchecked(Path(path))
    _check_finite(Path(path), checkpoint.state_dict)
    return checkpoint


def _read_unchecked(path: Path) -> Checkpoint:
    raw = _load_raw(path)
    if isinstance(raw, dict) and "format" in raw:
        if raw.get("format") != FORMAT_NAME:
            raise CheckpointError(path, f"unknown format {raw.get('format')!r}")
        version = raw.get("format_version")
        if version != FORMAT_VERSION:
            raise CheckpointError(
                path,
                f"format version {version} is not supported by this crysgnn_dgl "
                f"(reads version {FORMAT_VERSION}); upgrade or re-save the checkpoint",
            )
        try:
            return Checkpoint(
                state_dict=raw["state_dict"],
                model_settings=ModelSettings.from_dict(raw["model_settings"]),
                graph_settings=GraphSettings.from_dict(raw["graph_settings"]),
                training=raw.get("training", {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(path, f"incomplete checkpoint ({exc})") from exc
    if isinstance(raw, dict) and isinstance(raw.get("state_dict"), dict):
        raw = raw["state_dict"]
    if isinstance(raw, dict):
        raw = _strip_prefix(raw)
    if _is_reference_state_dict(raw):
        return _reference_checkpoint(path, raw)
    raise CheckpointError(path, "neither a crysgnn_dgl checkpoint nor a CrysGNN release state dict")


def model_from_checkpoint(
    path: str | os.PathLike, graph_settings: GraphSettings | None = None
) -> tuple[CrysGNN, Checkpoint]:
    """Build a :class:`CrysGNN` from a checkpoint.

    ``graph_settings``, when given, is what the caller will featurise with; a checkpoint
    trained with different featuriser settings is refused, naming each difference.
    """
    checkpoint = read_checkpoint(path)
    if graph_settings is not None:
        differences = checkpoint.graph_settings.differences(graph_settings)
        if differences:
            listed = ", ".join(f"{k}: checkpoint {a!r} vs requested {b!r}" for k, (a, b) in differences.items())
            raise CheckpointError(path, f"featuriser settings differ ({listed})")
    model = CrysGNN(checkpoint.model_settings, checkpoint.graph_settings)
    try:
        result = model.load_state_dict(checkpoint.state_dict, strict=False)
    except RuntimeError as exc:
        raise CheckpointError(path, f"weights do not fit the model: {exc}") from exc
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            path,
            f"weights do not match the model (missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]})",
        )
    return model, checkpoint
