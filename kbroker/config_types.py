"""Config definitions as data: types, validators, sources, and the one error they raise.

Theory of operation. Kafka declares every broker and topic setting once (a `ConfigDef`: name,
type, default, validator, importance, doc) and parses raw strings against that declaration;
everything else (defaults, DescribeConfigs, error messages) derives from it. We do the same.
A raw value is a string as it appears in `server.properties`, on the command line or in an
AlterConfigs request; `ConfigDef.parse` turns it into a typed value or raises `ConfigError`.

Parsing follows Kafka's `ConfigDef.parseType` so that a value Kafka accepts is accepted here
and one it rejects is rejected: surrounding whitespace is trimmed, booleans are
case-insensitive `true`/`false`, integers are plain decimal within the Java type's range, and
lists split on commas with optional whitespace around them.

The numeric ids of `ConfigType` and `ConfigSource` are the ones DescribeConfigs carries on the
wire (`config_type`, `config_source`), so handlers can send them as they are.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, NamedTuple, Protocol, TypeVar, cast, overload

# A parsed config value. None is Kafka's "null" (no value, e.g. log.retention.ms when unset).
Value = bool | int | float | str | list[str] | None

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
SHORT_MIN, SHORT_MAX = -(2**15), 2**15 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1

_INTEGER = re.compile(r"[+-]?[0-9]+")
# What Java's Double.parseDouble accepts, minus hexadecimal floats.
_DOUBLE = re.compile(r"[+-]?(NaN|Infinity|([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[dDfF]?)")
_LIST_SEPARATOR = re.compile(r"\s*,\s*")


class ConfigError(ValueError):
    """A config name or value that cannot be accepted.

    The message names the key, the value and what is expected, so that it can be shown to an
    operator as is. On the wire it becomes INVALID_CONFIG (error code 40).
    """

    error_code: ClassVar[int] = 40  # INVALID_CONFIG

    def __init__(self, message: str, name: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.name = name
        self.value = value

    @classmethod
    def invalid(cls, name: str, value: object, expected: str) -> ConfigError:
        """An error for `value` given to `name`, phrased like Kafka's ConfigException."""
        return cls(
            f"Invalid value {_show(value)} for configuration {name}: {expected}", name, value
        )


def _show(value: object) -> str:
    """Render a value for an error message: strings quoted, lists comma-joined."""
    if isinstance(value, list):
        return repr(",".join(str(v) for v in value))
    return repr(value) if isinstance(value, str) else str(value)


class ConfigType(enum.IntEnum):
    """A config's type; values are DescribeConfigs' `config_type` ids (v3+)."""

    UNKNOWN = 0
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class ConfigSource(enum.IntEnum):
    """Where a value came from; values are DescribeConfigs' `config_source` ids (v1+)."""

    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1  # a per-topic override
    DYNAMIC_BROKER_CONFIG = 2  # AlterConfigs on this broker
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3  # AlterConfigs on the cluster-wide broker default
    STATIC_BROKER_CONFIG = 4  # server.properties or --override
    DEFAULT_CONFIG = 5  # the built-in default
    DYNAMIC_BROKER_LOGGER_CONFIG = 6
    CLIENT_METRICS_CONFIG = 7
    GROUP_CONFIG = 8


class Importance(enum.Enum):
    """How much an operator should care, as in Kafka's generated documentation."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Validator(Protocol):
    """Checks a parsed value; raises ConfigError naming the config when it is not valid."""

    def __call__(self, name: str, value: Value) -> None: ...


@dataclass(frozen=True)
class AtLeast:
    """Numbers no smaller than `minimum` (null passes: it means 'not set')."""

    minimum: float

    def __call__(self, name: str, value: Value) -> None:
        if isinstance(value, int | float) and value < self.minimum:
            raise ConfigError.invalid(name, value, f"must be at least {_num(self.minimum)}")


@dataclass(frozen=True)
class Between:
    """Numbers in the closed range [low, high]."""

    low: float
    high: float

    def __call__(self, name: str, value: Value) -> None:
        if isinstance(value, int | float) and not self.low <= value <= self.high:
            raise ConfigError.invalid(
                name, value, f"must be between {_num(self.low)} and {_num(self.high)}"
            )


@dataclass(frozen=True)
class OneOf:
    """Strings from a fixed set (case-sensitive, as Kafka's ValidString)."""

    choices: tuple[str, ...]

    def __call__(self, name: str, value: Value) -> None:
        if value is not None and value not in self.choices:
            raise ConfigError.invalid(name, value, f"must be one of {', '.join(self.choices)}")


@dataclass(frozen=True)
class ListOf:
    """Lists without duplicates or empty items; `choices` empty means any item is allowed."""

    choices: tuple[str, ...] = ()
    allow_empty: bool = True

    def __call__(self, name: str, value: Value) -> None:
        if not isinstance(value, list):
            return
        if not value and not self.allow_empty:
            raise ConfigError.invalid(name, value, "must not be empty")
        if len(set(value)) != len(value):
            raise ConfigError.invalid(name, value, "must not contain duplicates")
        for item in value:
            if not item:
                raise ConfigError.invalid(name, value, "list items must not be empty")
            if self.choices and item not in self.choices:
                expected = f"items must be among {', '.join(self.choices)}"
                raise ConfigError.invalid(name, value, expected)


@dataclass(frozen=True)
class RangeOrSentinel:
    """Numbers in [low, high], or exactly `sentinel` (e.g. gzip's -1 'library default')."""

    low: int
    high: int
    sentinel: int

    def __call__(self, name: str, value: Value) -> None:
        if isinstance(value, int) and value != self.sentinel and not self.low <= value <= self.high:
            expected = f"must be between {self.low} and {self.high}, or {self.sentinel}"
            raise ConfigError.invalid(name, value, expected)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


@dataclass(frozen=True)
class ConfigDef:
    """One declared config: the facts Kafka declares for it, and our own one-line doc.

    `default` is the parsed default (None: no default, Kafka's null). `dynamic` says whether
    AlterConfigs may change it at runtime on a broker resource; `internal` hides it from
    DescribeConfigs while still accepting it.
    """

    name: str
    type: ConfigType
    default: Value
    doc: str
    importance: Importance = Importance.MEDIUM
    validator: Validator | None = None
    dynamic: bool = False
    internal: bool = False

    @property
    def sensitive(self) -> bool:
        """Passwords are never shown (DescribeConfigs sends null and is_sensitive=true)."""
        return self.type is ConfigType.PASSWORD

    def parse(self, raw: str) -> Value:
        """Parse and validate a raw string; raise ConfigError saying what is expected."""
        value = parse_typed(self.name, raw, self.type)
        self.check(value)
        return value

    def check(self, value: Value) -> None:
        """Validate an already parsed value."""
        if self.validator is not None:
            self.validator(self.name, value)

    def to_string(self, value: Value) -> str | None:
        """Render a value as DescribeConfigs shows it (Kafka's ConfigDef.convertToString)."""
        return value_to_string(value)


def value_to_string(value: Value) -> str | None:
    """Render a parsed value as Kafka does: lists comma-joined, booleans lower-case."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


def parse_typed(name: str, raw: str, type_: ConfigType) -> Value:
    """Turn a raw string into a value of `type_`, or raise ConfigError."""
    text = raw.strip()
    if type_ is ConfigType.BOOLEAN:
        lowered = text.lower()
        if lowered not in ("true", "false"):
            raise ConfigError.invalid(name, raw, "expected true or false")
        return lowered == "true"
    if type_ in _INTEGER_RANGES:
        return _parse_integer(name, raw, text, type_)
    if type_ is ConfigType.DOUBLE:
        if not _DOUBLE.fullmatch(text):
            raise ConfigError.invalid(name, raw, "expected a number")
        return float(text.rstrip("dDfF"))
    if type_ is ConfigType.LIST:
        return [] if not text else _LIST_SEPARATOR.split(text)
    return text


_INTEGER_RANGES = {
    ConfigType.INT: (INT_MIN, INT_MAX, "a 32-bit integer"),
    ConfigType.SHORT: (SHORT_MIN, SHORT_MAX, "a 16-bit integer"),
    ConfigType.LONG: (LONG_MIN, LONG_MAX, "a 64-bit integer"),
}


def _parse_integer(name: str, raw: str, text: str, type_: ConfigType) -> int:
    low, high, what = _INTEGER_RANGES[type_]
    if not _INTEGER.fullmatch(text):
        raise ConfigError.invalid(name, raw, f"expected {what}")
    number = int(text)
    if not low <= number <= high:
        raise ConfigError.invalid(name, raw, f"expected {what} (between {low} and {high})")
    return number


class ConfigSynonym(NamedTuple):
    """One source of a config's value, as DescribeConfigs lists synonyms."""

    name: str
    value: str | None
    source: ConfigSource


class ConfigEntry(NamedTuple):
    """One config as DescribeConfigs reports it."""

    name: str
    value: str | None
    source: ConfigSource
    is_default: bool
    sensitive: bool
    synonyms: list[ConfigSynonym]
    read_only: bool
    config_type: ConfigType
    documentation: str | None


class HasValues(Protocol):
    """Anything holding parsed config values by name (BrokerConfig, ResolvedTopicConfig)."""

    def get(self, name: str) -> Value: ...


T = TypeVar("T")


class Setting(Generic[T]):
    """A typed, read-only attribute for one config, so `cfg.num_partitions` is an int.

    Declared on the class as `num_partitions = Setting[int]("num.partitions")`; reading it
    returns the holder's current value (lists are copies, so callers cannot change them).
    """

    def __init__(self, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, holder: None, owner: type[Any]) -> Setting[T]: ...

    @overload
    def __get__(self, holder: HasValues, owner: type[Any]) -> T: ...

    def __get__(self, holder: HasValues | None, owner: type[Any]) -> Setting[T] | T:
        if holder is None:
            return self
        return cast(T, holder.get(self.name))
