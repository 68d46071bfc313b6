"""One configuration style: every settings dataclass validates on construction (one-line
``ValueError`` naming the field and the value), and ``pretrain`` reads ``--config`` and
writes the resolved options beside its outputs."""

from __future__ import annotations

import warnings

import pytest
from _pretrain_fixtures import corpus_csv  # noqa: F401

from crysgnn_dgl.cli import main
from crysgnn_dgl.config import GraphSettings, ModelSettings
from crysgnn_dgl.distill.settings import DistillSettings
from crysgnn_dgl.models.cgcnn import CGCNNSettings
from crysgnn_dgl.models.gatgnn import GATGNNSettings
from crysgnn_dgl.pretrain.settings import ObjectiveSettings, OptimizerSettings, PretrainSettings
from crysgnn_dgl.training.compare import ComparisonSettings
from crysgnn_dgl.training.loop import TrainingSettings
from crysgnn_dgl.training.options import ExperimentDefaults

BAD = [
    (GraphSettings, "radius", -1.0),
    (GraphSettings, "gaussian_stop", -1.0),
    (ModelSettings, "hidden_dim", 0),
    (OptimizerSettings, "schedule", "linear"),
    (OptimizerSettings, "learning_rate", 0.0),
    (PretrainSettings, "validation_fraction", 1.0),
    (PretrainSettings, "devices", 0),
    (ObjectiveSettings, "temperature", -0.1),
    (ObjectiveSettings, "feature_weight", float("nan")),
    (TrainingSettings, "lr", -1.0),
    (TrainingSettings, "optimizer", "RMSprop"),
    (TrainingSettings, "plateau_factor", 1.5),
    (ComparisonSettings, "delta", 0.0),
    (ComparisonSettings, "train_limit", 0),
    (CGCNNSettings, "dropout", 1.0),
    (GATGNNSettings, "heads", 0),
    (DistillSettings, "projection", "conv"),
    (DistillSettings, "normalize", "yes"),
    (ExperimentDefaults, "epochs", 0),
]


@pytest.mark.parametrize("cls, name, value", BAD, ids=[f"{c.__name__}.{n}" for c, n, _ in BAD])
def test_invalid_field_is_one_line_naming_field_and_value(cls, name, value):
    with pytest.raises(ValueError) as caught:
        cls(**{name: value})
    message = str(caught.value)
    assert message.startswith(f"{cls.__name__}.{name} must be ") and repr(value) in message
    assert "\n" not in message


@pytest.mark.parametrize("cls", sorted({c for c, _, _ in BAD}, key=lambda c: c.__name__))
def test_defaults_are_valid_and_round_trip(cls):
    settings = cls()
    assert type(settings).from_dict(settings.to_dict()) == settings


def test_old_pretrain_settings_name_is_a_deprecated_alias():
    import crysgnn_dgl.pretrain.settings as module

    with pytest.warns(DeprecationWarning, match="PretrainSettings"):
        assert module.TrainingSettings is PretrainSettings


def test_pretrain_options_default_to_the_dataclasses():
    from crysgnn_dgl.cli import build_parser

    args = build_parser().parse_args(["pretrain", "x.cif", "--out", "run"])
    training, optimizer, objectives = PretrainSettings(), OptimizerSettings(), ObjectiveSettings()
    assert (args.epochs, args.batch_size, args.val_fraction) == (
        training.max_epochs, training.batch_size, training.validation_fraction)
    assert (args.lr, args.schedule, args.temperature) == (
        optimizer.learning_rate, optimizer.schedule, objectives.temperature)


def test_pretrain_config_file_and_resolved_config(tmp_path, corpus_csv, capsys):
    config = tmp_path / "run.toml"
    config.write_text(f'inputs = ["{corpus_csv}"]\nepochs = 3\nbatch_size = 16\nshard_size = 8\ndevices = 1\n')
    out = tmp_path / "run"
    assert main(["pretrain", "--config", str(config), "--out", str(out), "--batch-size", "4",
                 "--cache-only", "--no-progress"]) == 0
    resolved = (out / "config.toml").read_text()
    assert "epochs = 3\n" in resolved and "batch_size = 4\n" in resolved and "shard_size = 8\n" in resolved
    assert f'inputs = ["{corpus_csv}"]' in resolved and "devices = 1\n" in resolved and "config =" not in resolved
    from crysgnn_dgl.cli import build_parser
    from crysgnn_dgl.cli.config_file import apply_config
    from crysgnn_dgl.cli.pretrain import add_arguments

    again = apply_config(build_parser().parse_args(["pretrain", "--config", str(out / "config.toml")]), add_arguments)
    assert (again.inputs, again.epochs, again.batch_size, again.out) == ([str(corpus_csv)], 3, 4, str(out))


def test_pretrain_config_errors_are_one_line(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text("epoch = 3\n")
    assert main(["pretrain", "--config", str(config), "--out", str(tmp_path / "r")]) == 2
    assert "unknown option(s) ['epoch']" in capsys.readouterr().err
    assert main(["pretrain", "--out", str(tmp_path / "r")]) == 2
    assert "no inputs" in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["pretrain", str(config)]) == 2
    assert "--out FOLDER is required" in capsys.readouterr().err
