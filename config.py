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
import inspect
import io
import textwrap
import tokenize


class ConfigError(ValueError):
    """A bad command line or config value; train.py prints it as one line and exits 1."""


def bare_flags(argv: list[str], flag: str) -> list[str]:
    """A boolean `flag` alone means `flag true`: bare_flags(['--quick', '--out', 'b.json'],
    '--quick') -> ['--quick=true', '--out', 'b.json']; `--quick false` is left alone."""
    return [f"{a}=true" if a == flag and (i + 1 == len(argv) or argv[i + 1].startswith("--"))
            else a for i, a in enumerate(argv)]


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


def field_comments(cls) -> dict[str, str]:
    """The comment on each field's line of a dataclass's source, with any comment-only lines
    right below it: the --help text of that knob. A field without one gets "".
    For `lr: float = 3e-3  # peak learning rate` -> {"lr": "peak learning rate"}."""
    comments: dict[str, str] = {}
    field, names = None, {f.name for f in dataclasses.fields(cls)}
    source = textwrap.dedent(inspect.getsource(cls))
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    line_start = True
    for tok in tokens:
        if tok.type == tokenize.NAME and line_start and tok.string in names and tok.start[1] == 4:
            field = tok.string                              # a field's line begins
            comments.setdefault(field, "")
        elif tok.type == tokenize.NAME and line_start and tok.start[1] == 4:
            field = None                                    # `def __post_init__`, anything else
        elif tok.type == tokenize.COMMENT and field is not None:
            text = tok.string.lstrip("#").strip()
            comments[field] = f"{comments[field]} {text}".strip()
        line_start = tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT,
                                  tokenize.DEDENT, tokenize.COMMENT)
    return comments


def help_text(configs: list) -> str:
    """Every knob, grouped by the config (the stage) that owns it: --name default  its comment.
    The first line of each group is the config's docstring."""
    lines = []
    for c in configs:
        doc = (vars(type(c)).get("__doc__") or "").strip().splitlines()
        doc = [] if doc and doc[0].startswith(f"{type(c).__name__}(") else doc  # dataclass's own
        lines.append(f"\n{type(c).__name__}: {doc[0] if doc else ''}".rstrip())
        comments = field_comments(type(c))
        for f in dataclasses.fields(c):
            flag = f"  --{f.name} {getattr(c, f.name)!r}"
            text = textwrap.wrap(comments.get(f.name, ""), 100 - 31) or [""]
            lines.append(f"{flag:<30} {text[0]}".rstrip())
            lines.extend(" " * 31 + more for more in text[1:])
    return "\n".join(lines)


def as_dict(configs: list) -> dict:
    """{'TaskConfig': {...}, 'GPTConfig': {...}, ...}, ready for JSON."""
    return {type(c).__name__: dataclasses.asdict(c) for c in configs}
