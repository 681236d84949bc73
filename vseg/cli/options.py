"""What every command shares: options whose default and help come from a config field, ``--config`` and ``--set``,
and the one function that resolves a command's config from them.

A config-backed option defaults to None, meaning "not given": its help shows the field's default instead, so the
help cannot drift from the config models, and a value given on the command line wins over ``--config`` and ``--set``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
import inspect
from typing import Any, Literal, get_args, get_origin

import typer
from pydantic.fields import FieldInfo
from typer.core import TyperCommand, TyperGroup, TyperOption

from vseg.config import ConfigT, StageConfig, load_config
from vseg.presets import resolve_config

UNSET_DEFAULT = "from the config"
"""The default shown for a config field whose default is None (unset: the stage decides, or the config sets it)."""


class FieldDefault(str):
    """The ``show_default`` text of a config-backed option, remembering the field it shows (for tests and help)."""

    model: type[StageConfig]
    key: str

    def __new__(cls, text: str, model: type[StageConfig], key: str) -> FieldDefault:
        shown = super().__new__(cls, text)
        shown.model, shown.key = model, key
        return shown


def config_field(model: type[StageConfig], key: str) -> tuple[FieldInfo, Any]:
    """The field behind a dotted ``key`` of ``model`` and its default there: ``train.epochs`` of HicoConfig is 120,
    as HicoConfig's default ``train`` section says, not TrainConfig's 100."""
    *sections, name = key.split(".")
    defaults: StageConfig | None = None
    for section in sections:
        defaults = getattr(defaults, section) if defaults is not None else model.model_fields[section].default
        model = type(defaults)
    field = model.model_fields[name]
    return field, getattr(defaults, name) if defaults is not None else field.default


def shown_default(default: Any, flags: str) -> str:
    """How ``--help`` shows a config default: None as "from the config", a bool as the flag that gives it."""
    if default is None:
        return UNSET_DEFAULT
    if isinstance(default, bool):
        on, _, off = flags.partition("/")
        return (on if default else off).lstrip("-")
    return str(default)


def config_option(model: type[StageConfig], key: str, *flags: str, **kwargs: Any) -> Any:
    """An option that sets the config key ``key`` (dotted for nested sections) of ``model``: its help is the field's
    description and its shown default the field's default; its value is None unless given on the command line."""
    field, default = config_field(model, key)
    description = field.description or ""
    return typer.Option(
        None,
        *flags,
        help=f"{description[:1].upper()}{description[1:]}.",
        show_default=FieldDefault(shown_default(default, flags[0]), model, key),
        **kwargs,
    )


def config_file_option(presets: str = "") -> Any:
    """``--config FILE|PRESET``; ``presets`` names the presets worth knowing for this command."""
    return typer.Option(
        None,
        "--config",
        "-c",
        help=f"YAML config file, or the name of a preset shipped with vseg, such as synth/cpu_tiny.{presets}",
    )


def set_option(example: str) -> Any:
    """``--set KEY=VALUE``, repeatable; ``example`` is a key of this command's config."""
    return typer.Option(
        None, "--set", help=f"Override one config key, e.g. --set {example} (repeatable; applied after --config)."
    )


def build_config(
    model: type[ConfigT], config: Path | None, overrides: Sequence[str] | None, options: Mapping[str, Any]
) -> ConfigT:
    """A command's config: the model's defaults < ``--config`` (file or preset) < each ``--set`` < ``options`` (dotted
    config keys to the values of config-backed options) that were given on the command line (not None)."""
    given = {key: value for key, value in options.items() if value is not None}
    return load_config(model, resolve_config(config), overrides or (), given)


def field_choices(model: type[StageConfig], key: str) -> tuple[str, ...]:
    """The values a config field takes when it is a ``Literal`` (``Literal[...] | None`` too), else ()."""
    field, _ = config_field(model, key)
    annotation = field.annotation
    choices: list[str] = []
    for part in (annotation, *get_args(annotation)):
        if get_origin(part) is Literal:
            choices += [str(value) for value in get_args(part)]
    return tuple(choices)


class _Option(TyperOption):
    """Shows a ``show_default`` text as written, ``[default: start fresh]``, where click and Typer put it in
    parentheses; shows no type for a flag, and a config field's choices as ``[a|b]`` instead of its type."""

    def _get_default_string(self, *, ctx: typer.Context, show_default_is_str: bool, default_value: Any) -> str:
        if show_default_is_str:
            return str(self.show_default)
        return super()._get_default_string(ctx=ctx, show_default_is_str=False, default_value=default_value)

    def display_type_rich(self, ctx: typer.Context) -> str | None:
        if self.is_flag or self.count:
            return None
        if isinstance(self.show_default, FieldDefault):
            choices = field_choices(self.show_default.model, self.show_default.key)
            if choices:
                return f"[{'|'.join(choices)}]"
        return super().display_type_rich(ctx)


def _show_defaults_as_written(params: list[Any]) -> None:
    for param in params:
        if type(param) is TyperOption:
            param.__class__ = _Option


def paragraphs(text: str | None) -> str | None:
    """A docstring's text with the line breaks inside its paragraphs removed, so that help wraps it to the
    terminal (paragraphs stay apart)."""
    if not text:
        return text
    return "\n\n".join(" ".join(block.split()) for block in inspect.cleandoc(text).split("\n\n"))


class Command(TyperCommand):
    """Every vseg command: option defaults shown as written (see _Option), help text as paragraphs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _show_defaults_as_written(self.params)
        self.help = paragraphs(self.help)

    def get_help_option(self, ctx: typer.Context) -> Any:
        return _flag_without_type(super().get_help_option(ctx))


class Group(TyperGroup):
    """Every vseg group (a group's callback can take options too, as ``vseg segment`` does)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _show_defaults_as_written(self.params)
        self.help = paragraphs(self.help)

    def get_help_option(self, ctx: typer.Context) -> Any:
        return _flag_without_type(super().get_help_option(ctx))


def _flag_without_type(option: Any) -> Any:
    """click's ``--help`` option, showing no type in the help (as every other flag)."""
    if option is not None:
        option.display_type_rich = lambda ctx: None
    return option


class App(typer.Typer):
    """A Typer app whose groups and commands are Group and Command."""

    def __init__(self, *, cls: type[TyperGroup] = Group, no_args_is_help: bool = True, **kwargs: Any) -> None:
        super().__init__(
            cls=cls,
            no_args_is_help=no_args_is_help,
            pretty_exceptions_show_locals=False,
            add_completion=False,
            **kwargs,
        )

    def command(self, *args: Any, cls: type[TyperCommand] = Command, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls, **kwargs)
