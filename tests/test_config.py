"""The option table of `ner_fast.config`: one definition feeding the CLI, the dataclasses, `prepare()` and the recipes."""
from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys

import click
import pytest

from ner_fast.cli.prepare import prepare_command
from ner_fast.cli.train import train_command
from ner_fast.config import (
    OPTIONS,
    RECIPE_NAMES,
    RECIPES,
    ModelConfig,
    OptionError,
    TrainConfig,
    options,
    parse_buckets,
    parse_split,
)
from ner_fast.prepare import prepare


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _field_default(f: dataclasses.Field) -> object:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]


def test_every_row_is_a_field_of_the_dataclass_it_feeds_with_the_same_default() -> None:
    train_fields, model_fields = _fields(TrainConfig), _fields(ModelConfig)
    assert len(OPTIONS) > 20
    for opt in OPTIONS:
        fields = model_fields if opt.feeds == "model" else train_fields
        assert opt.name in fields, f"{opt.name} feeds {opt.feeds} but has no field there"
        assert _field_default(fields[opt.name]) == opt.default_for("tuned"), opt.name
    # ... and every field but the data's identity and sizes is a row.
    rows = {o.name for o in OPTIONS}
    assert set(train_fields) - rows == {"out", "data", "arch"}
    assert set(model_fields) - rows == {"n_words", "n_chars", "n_tags", "n_pos", "n_casing"}  # max_token_chars: a data row


def test_model_config_defaults_are_the_clis_and_the_train_configs() -> None:
    # The issue: ModelConfig's defaults were the tutorial's while the CLI's were the tuned recipe's.
    model = ModelConfig(n_words=10, n_chars=10, n_tags=3, max_token_chars=20)
    arch = TrainConfig(out="x").arch
    assert arch and all(getattr(model, name) == value for name, value in arch.items())
    assert model.crf is True and model.use_casing is True and model.dropout == 0.5


def test_prepare_defaults_are_the_tables() -> None:
    params = inspect.signature(prepare).parameters
    data_rows = options(command="prepare")
    assert data_rows
    for opt in data_rows:
        assert params[opt.name].default == opt.default_for("tuned"), opt.name


@pytest.mark.parametrize("command,name", [(train_command, "train"), (prepare_command, "prepare")])
def test_cli_offers_exactly_the_tables_options_with_its_help(command: click.Command, name: str) -> None:
    by_name = {p.name: p for p in command.params}
    rows = options(command=name)
    assert rows
    for opt in rows:
        param = by_name[opt.name]
        assert opt.cli_flag in param.opts, opt.name
        assert param.default is None  # the recipe fills what is not given
        assert param.help == opt.help_text()  # type: ignore[attr-defined]
    offered = {p.name for p in command.params} - {"recipe_name", "out", "resume_dir", "force", "progress", "as_json", "data", "help"}
    assert offered == {o.name for o in rows}


def test_recipes_come_from_the_rows_and_differ_where_the_rows_say() -> None:
    assert set(RECIPES) == set(RECIPE_NAMES)
    per_recipe = [o for o in OPTIONS if o.by_recipe]
    assert per_recipe
    for opt in per_recipe:
        assert RECIPES["tuned"][opt.name] == opt.default["tuned"]
        assert RECIPES["tutorial"][opt.name] == opt.default["tutorial"]
    tutorial = TrainConfig.from_options("x", recipe_name="tutorial")
    assert (tutorial.learning_rate, tutorial.lowercase, tutorial.arch["crf"], tutorial.arch["dropout"]) == (0.01, False, False, 0.1)


def test_one_split_parser_and_one_bucket_parser() -> None:
    assert parse_split("0.8") == (0.8, 0.2)
    assert parse_split("0.7,0.1") == (0.7, 0.1)
    for bad in ("0", "0.5,0.6", "a", "0.1,0.2,0.3"):
        with pytest.raises(ValueError):
            parse_split(bad)
    assert parse_buckets("40,10, 20,10") == [10, 20, 40]
    for bad in ("", "0,3", "a,b", "-1"):
        with pytest.raises(ValueError):
            parse_buckets(bad)


def test_out_of_range_values_name_the_option() -> None:
    for kwargs, flag in (
        ({"arch": {"dropout": 2.0}}, "--dropout"),
        ({"arch": {"word_dim": 0}}, "--word-dim"),
        ({"arch": {"directions": 3}}, "--directions"),
        ({"arch": {"directions": 0}}, "--directions"),
        ({"patience": -1}, "--patience"),
        ({"learning_rate": 0.0}, "--lr"),
        ({"context": "tpu:0"}, "--context"),
        ({"kvstore": "nfs"}, "--kvstore"),
    ):
        with pytest.raises(OptionError, match=flag):
            TrainConfig(out="x", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(OptionError, match="--filter-widths"):
        ModelConfig(n_words=5, n_chars=5, n_tags=2, max_token_chars=4, filter_widths=[5])


def test_the_language_model_loss_needs_both_directions() -> None:
    # The backward LSTM predicts the previous word: a forward-only model cannot have the loss.
    for make in (
        lambda: ModelConfig(n_words=5, n_chars=5, n_tags=2, max_token_chars=4, directions=1, lm_aux_weight=0.1),
        lambda: TrainConfig(out="x", arch={"directions": 1, "lm_aux_weight": 0.1}),
        lambda: TrainConfig.from_options("x", directions=1, lm_aux_weight=0.1),
    ):
        with pytest.raises(OptionError, match="--directions 1") as err:
            make()
        assert err.value.option == "--lm-aux-weight"
    # Either alone is fine; the default is the BiLSTM.
    assert TrainConfig(out="x", arch={"directions": 1}).arch["directions"] == 1
    assert TrainConfig(out="x", arch={"lm_aux_weight": 0.1}).arch["directions"] == 2


def test_config_module_does_not_import_mxnet() -> None:
    code = "import sys, ner_fast.config, ner_fast.cli.train; assert 'mxnet' not in sys.modules, 'mxnet imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
