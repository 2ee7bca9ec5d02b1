"""``rtstyle train FAMILY``: one subcommand per trainer, its flags generated from the trainer's config.

A trainer registers itself in :data:`TRAINERS` with its name, its config dataclass, its run function
``run(cfg, progress=bool) -> Path`` and a one-line description. Each field of the config whose
metadata has a ``"help"`` becomes a flag, written once, in the dataclass:

``help``
    the flag's help (required; fields without it, such as ``licence``, are not flags).
``flag``
    the flag's name (default ``--`` + the field name with ``-`` for ``_``).
``type``, ``choices``, ``action``, ``metavar``
    as for :meth:`argparse.ArgumentParser.add_argument`; by default the type comes from the field's
    annotation (``int``, ``float``, ``str``, ``X | None``), a ``bool`` field is a switch and a
    ``tuple[X, ...]`` field takes comma-separated values (``action: "append"``: a repeated flag).
``must_exist``, ``what``
    ``"file"`` or ``"dir"``: the path is checked before any training work, and a missing one is the
    one-line error ``<what> not found: PATH``.

A field without a default is a required flag. Configs are imported only when their subcommand is
parsed or its help shown, so ``rtstyle --help`` does not import torch.
"""
from __future__ import annotations

import argparse
import importlib
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import dataclasses

from ._common import CLIError

__all__ = ["TRAINERS", "Trainer", "add_parser", "cmd_train", "config_from_args", "flag_fields"]

_DEST = "train_"  # config values live under args.train_<field>: no clash with the top-level options


class Trainer(NamedTuple):
    """A ``rtstyle train`` subcommand. ``config`` and ``run`` are ``"module:attribute"`` references,
    imported when the subcommand is used."""

    name: str
    config: str
    run: str
    description: str

    def load_config(self) -> type:
        return _load(self.config)

    def load_run(self) -> Callable[..., Path]:
        return _load(self.run)


TRAINERS: tuple[Trainer, ...] = (
    Trainer("johnson", "rtstyle.training.johnson:JohnsonTrainConfig", "rtstyle.training.johnson:train_johnson",
            "a Johnson transform net for one style image"),
    Trainer("adain", "rtstyle.training.adain:AdaINTrainConfig", "rtstyle.training.adain:train_adain",
            "the AdaIN decoder for the VGG16 relu4_1 encoder (any style image at run time)"),
    Trainer("msgnet", "rtstyle.training.msgnet:MSGNetTrainConfig", "rtstyle.training.msgnet:train_msgnet",
            "an MSG-Net (CoMatch) multi-style net on a folder of style images"),
    Trainer("metanet", "rtstyle.training.metanet:MetaNetTrainConfig", "rtstyle.training.metanet:train_metanet",
            "a MetaNet (Shen et al. 2018): any style image -> a Johnson net in one pass"),
    Trainer("linear", "rtstyle.training.linear:LinearTrainConfig", "rtstyle.training.linear:train_linear",
            "the linear.r31 transform (Li et al. 2019) on the frozen relu3_1 encoder/decoder (any style image)"),
    Trainer("decoder", "rtstyle.training.decoder:DecoderTrainConfig", "rtstyle.training.decoder:train_decoder",
            "a relu1_1 / relu2_1 reconstruction decoder for the normalised-VGG19 encoder (multi-level WCT/AdaIN)"),
)


def _load(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def _trainer(name: str) -> Trainer:
    for t in TRAINERS:
        if t.name == name:
            return t
    raise CLIError(f"unknown family {name!r}")


class _TrainParser(argparse.ArgumentParser):
    """A family's parser: its flags are added from the config on first use (parse or help)."""

    trainer: Trainer | None = None
    _populated = False

    def populate(self) -> None:
        if not self._populated and self.trainer is not None:
            self._populated = True
            add_config_flags(self, self.trainer.load_config())

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        self.populate()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self.populate()
        return super().format_help()

    def format_usage(self) -> str:
        self.populate()
        return super().format_usage()


def add_parser(sub: Any) -> None:
    s = sub.add_parser("train", help="train a model")
    tsub = s.add_subparsers(dest="family", required=True, metavar="FAMILY", parser_class=_TrainParser)
    for trainer in TRAINERS:
        t = tsub.add_parser(trainer.name, help=trainer.description)
        t.trainer = trainer
    s.set_defaults(func=cmd_train)


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """An annotation -> (its base type, whether it is a ``tuple[X, ...]``); ``X | None`` is ``X``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    if typing.get_origin(tp) is tuple:
        items = typing.get_args(tp)
        return (items[0] if items else str), True
    return tp, False


def _comma_list(base: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    def parse(text: str) -> list[Any]:
        return [base(v.strip()) for v in text.split(",") if v.strip()]

    parse.__name__ = f"comma-separated {getattr(base, '__name__', 'value')}"
    return parse


def _default(f: dataclasses.Field) -> Any:
    import dataclasses

    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def flag_fields(config: type) -> list[tuple[str, dataclasses.Field, Any, bool]]:
    """The fields of ``config`` that are flags, as ``(flag, field, base type, is a tuple)``."""
    import dataclasses

    hints = typing.get_type_hints(config)
    own = set(vars(config).get("__annotations__", {}))
    # the config's own fields first (its inputs and outputs lead --help), then those of mixins such as
    # rtstyle.training.temporal.TemporalOptions, which dataclasses lists first
    ordered = sorted(dataclasses.fields(config), key=lambda f: f.name not in own)
    out = []
    for f in ordered:
        if "help" not in f.metadata:
            continue
        base, is_tuple = _unwrap(hints[f.name])
        out.append((f.metadata.get("flag", "--" + f.name.replace("_", "-")), f, base, is_tuple))
    return out


def add_config_flags(parser: argparse.ArgumentParser, config: type) -> None:
    """One flag per field of ``config`` with help metadata (see the module docstring)."""
    import dataclasses

    for flag, f, base, is_tuple in flag_fields(config):
        md = f.metadata
        default = _default(f)
        kw: dict[str, Any] = {"dest": _DEST + f.name, "help": str(md["help"]).replace("%", "%%")}
        action = md.get("action")
        if action is None and base is bool:
            action = argparse.BooleanOptionalAction if default is True else "store_true"
        if default is dataclasses.MISSING:
            kw["required"] = True
        else:
            kw["default"] = None if action == "append" else default  # append: None -> the field's default
        if action is not None:
            kw["action"] = action
        if action not in ("store_true", "store_false", argparse.BooleanOptionalAction):
            kw["type"] = md.get("type") or (_comma_list(base) if is_tuple and action != "append" else base)
            if "choices" in md:
                kw["choices"] = md["choices"]
            if "metavar" in md or "choices" not in md:  # choices show as {a,b,c}
                kw["metavar"] = md.get("metavar", f.name.upper())
        parser.add_argument(flag, **kw)


def config_from_args(config: type, args: argparse.Namespace) -> Any:
    """The ``config`` instance the parsed flags give (fields that are not flags keep their default)."""
    values: dict[str, Any] = {}
    for _, f, _, is_tuple in flag_fields(config):
        v = getattr(args, _DEST + f.name)
        if v is None and f.metadata.get("action") == "append":
            continue
        values[f.name] = tuple(v) if is_tuple and isinstance(v, list) else v
    return config(**values)


def _check_paths(config: type, args: argparse.Namespace) -> None:
    for flag, f, _, _ in flag_fields(config):
        kind = f.metadata.get("must_exist")
        if kind is None:
            continue
        p = Path(getattr(args, _DEST + f.name))
        if not (p.is_dir() if kind == "dir" else p.is_file() if kind == "file" else p.exists()):
            raise CLIError(f"{f.metadata.get('what', flag)} not found: {p}")


def cmd_train(args: argparse.Namespace) -> int:
    trainer = _trainer(args.family)
    config = trainer.load_config()
    _check_paths(config, args)
    path = trainer.load_run()(config_from_args(config, args), progress=not args.quiet)
    print(f"wrote {path}")
    return 0
