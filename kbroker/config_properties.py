"""A reader for Java `.properties` files, as Kafka's `server.properties` is written.

It follows the rules of `java.util.Properties.load` so that a file Kafka reads means the same
here:

- a natural line ends at `\\n`, `\\r` or `\\r\\n`; leading whitespace (space, tab, form feed)
  is ignored; blank lines and lines whose first visible character is `#` or `!` are comments;
- a line ending in an odd number of backslashes continues on the next line, whose leading
  whitespace is dropped (a comment line never continues);
- the key ends at the first unescaped `=`, `:` or whitespace; whitespace and at most one `=`
  or `:` after it are skipped; the rest of the line is the value (`key=value`, `key: value`
  and `key value` are all the same);
- escapes: `\\t \\n \\r \\f`, `\\uXXXX`, and a backslash before any other character stands
  for that character (`\\=`, `\\:`, `\\ `, `\\\\`, `\\#`);
- a key given twice keeps its last value.

Java reads these files as ISO-8859-1; we read UTF-8 and fall back to ISO-8859-1 when the bytes
are not UTF-8, which gives the same result for ASCII files (all real Kafka configs) and lets
people write non-ASCII text without `\\u` escapes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from kbroker.config_types import ConfigError

_NATURAL_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_WHITESPACE = " \t\f"
_SIMPLE_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def load_properties(path: str) -> dict[str, str]:
    """Read a .properties file; raise ConfigError if it cannot be read or is malformed."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("iso-8859-1")
    return parse_properties(text, source=path)


def parse_properties(text: str, source: str = "<string>") -> dict[str, str]:
    """Parse the text of a .properties file into an ordered key -> value mapping."""
    result: dict[str, str] = {}
    for lineno, line in _logical_lines(text):
        raw_key, raw_value = _split_key_value(line)
        where = f"{source}:{lineno}"
        result[_unescape(raw_key, where)] = _unescape(raw_value, where)
    return result


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield (first line number, logical line) with comments dropped, continuations joined."""
    lines = _NATURAL_LINE_BREAK.split(text)
    index = 0
    while index < len(lines):
        lineno = index + 1
        line = lines[index].lstrip(_WHITESPACE)
        index += 1
        if not line or line[0] in "#!":
            continue
        while _continues(line):
            line = line[:-1]
            if index >= len(lines):
                break
            line += lines[index].lstrip(_WHITESPACE)
            index += 1
        yield lineno, line


def _continues(line: str) -> bool:
    """True when the line ends in an odd number of backslashes (the last one is not escaped)."""
    trailing = len(line) - len(line.rstrip("\\"))
    return trailing % 2 == 1


def _split_key_value(line: str) -> tuple[str, str]:
    """Split a logical line at the first unescaped separator; both parts are still escaped."""
    position = 0
    escaped = False
    separator_seen = False
    while position < len(line):
        char = line[position]
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in "=:" or char in _WHITESPACE:
            separator_seen = char in "=:"
            break
        position += 1
    key = line[:position]
    rest = line[position + 1 :] if position < len(line) else ""
    rest = rest.lstrip(_WHITESPACE)
    if not separator_seen and rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(_WHITESPACE)
    return key, rest


def _unescape(text: str, where: str) -> str:
    """Resolve backslash escapes; a malformed \\uXXXX is an error, as in Java."""
    if "\\" not in text:
        return text
    out: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        position += 1
        if char != "\\" or position >= len(text):
            # A lone trailing backslash (end of input mid-continuation) is dropped, as Java does.
            if char != "\\":
                out.append(char)
            continue
        code = text[position]
        position += 1
        if code == "u":
            hex_digits = text[position : position + 4]
            if len(hex_digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in hex_digits):
                raise ConfigError(f"{where}: malformed \\uXXXX escape in {text!r}")
            out.append(chr(int(hex_digits, 16)))
            position += 4
        else:
            out.append(_SIMPLE_ESCAPES.get(code, code))
    return "".join(out)
