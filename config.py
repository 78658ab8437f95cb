"""
Dataclass configs from the command line: `--key value` (or `--key=value`) overrides.

What this is: each stage of train.py owns one dataclass (TaskConfig, GPTConfig, PretrainConfig,
...). Every field name is unique across them, so `python train.py --n_layer 6 --lr 1e-3` needs no
prefixes. Values are converted with the field's declared type, then the dataclass validates
itself in `__post_init__`. A mistake is one line naming the key:

    error: unknown config key --n_layers (did you mean --n_layer?)
    error: --lr expects a float, got 'fast'

What this is deliberately not: a config-file language. Nothing is exec'd, nothing is global, and
configs are never mutated: `apply` returns new instances (cf. cleanrl's dataclass + tyro, without
the dependency; nanoGPT's exec'd configurator is the counter-example).
"""

import dataclasses
import difflib


class ConfigError(ValueError):
    """A bad command line or config value; train.py prints it as one line and exits 1."""


def parse_pairs(argv: list[str]) -> dict[str, str]:
    """['--lr', '1e-3', '--n_layer=6'] -> {'lr': '1e-3', 'n_layer': '6'}."""
    pairs, i = {}, 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--") or arg == "--":
            raise ConfigError(f"expected --key value, got {arg!r}")
        if "=" in arg:
            key, value = arg[2:].split("=", 1)
            i += 1
        elif i + 1 < len(argv):
            key, value = arg[2:], argv[i + 1]
            i += 2
        else:
            raise ConfigError(f"--{arg[2:]} needs a value")
        if key in pairs:
            raise ConfigError(f"--{key} given twice")
        pairs[key] = value
    return pairs


def _convert(key: str, text: str, kind):
    """Text to the field's type: int, float, bool (true/false/1/0) or str."""
    kind = {"int": int, "float": float, "bool": bool, "str": str}.get(kind, kind)
    if kind is bool:
        if text.lower() in ("1", "true", "yes"):
            return True
        if text.lower() in ("0", "false", "no"):
            return False
        raise ConfigError(f"--{key} expects true or false, got {text!r}")
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise ConfigError(f"--{key} expects {getattr(kind, '__name__', kind)}, got {text!r}") from None


def apply(configs: list, overrides: dict[str, object]) -> list:
    """New config instances with `overrides` (values as text or already typed) applied."""
    owner = {f.name: i for i, c in enumerate(configs) for f in dataclasses.fields(c)}
    changes: list[dict] = [{} for _ in configs]
    for key, value in overrides.items():
        if key not in owner:
            close = difflib.get_close_matches(key, list(owner), n=1)
            hint = f" (did you mean --{close[0]}?)" if close else ""
            raise ConfigError(f"unknown config key --{key}{hint}")
        i = owner[key]
        kind = next(f.type for f in dataclasses.fields(configs[i]) if f.name == key)
        changes[i][key] = _convert(key, value, kind) if isinstance(value, str) else value
    try:
        return [dataclasses.replace(c, **ch) for c, ch in zip(configs, changes)]
    except ValueError as e:                      # raised by a dataclass's __post_init__
        raise ConfigError(str(e)) from None


def help_text(configs: list) -> str:
    """One line per knob: --name (type, default)."""
    lines = []
    for c in configs:
        lines.append(f"{type(c).__name__}:")
        for f in dataclasses.fields(c):
            kind = getattr(f.type, "__name__", f.type)
            lines.append(f"  --{f.name:<18} {kind:<6} default {getattr(c, f.name)!r}")
    return "\n".join(lines)


def as_dict(configs: list) -> dict:
    """{'TaskConfig': {...}, 'GPTConfig': {...}, ...}, ready for JSON."""
    return {type(c).__name__: dataclasses.asdict(c) for c in configs}
