"""The generated modules are exactly what the declarations produce."""

from __future__ import annotations

from protocol.codegen.build import generated_files
from protocol.codegen.schema import SchemaError, VersionRange, parse_text


def test_regeneration_gives_no_diff() -> None:
    stale = [str(path) for path, text in generated_files().items() if path.read_text() != text]
    assert stale == [], "run: python -m protocol.codegen"


def test_version_ranges() -> None:
    assert 5 in VersionRange.parse("3+") and 2 not in VersionRange.parse("3+")
    assert 7 not in VersionRange.parse("3-6") and 6 in VersionRange.parse("3-6")
    assert 0 not in VersionRange.parse("none")
    assert str(VersionRange.parse("4")) == "4"


def test_parse_nested_and_common_structs() -> None:
    text = (
        "request DemoRequest key 1000 versions 0-2 flexible 2+\n"
        '  name string 0+ default "a b"\n'
        "  items []Item 1+\n"
        "    id int32 1+\n"
        "  leader Leader 0+\n"
        "  struct Leader\n"
        "    epoch int32 0+ default -1\n"
    )
    (message,) = parse_text(text)
    assert [f.name for f in message.fields] == ["name", "items", "leader"]
    assert message.fields[0].default == '"a b"'
    assert [f.name for f in message.structs["Item"].fields] == ["id"]
    assert [f.name for f in message.structs["Leader"].fields] == ["epoch"]


def test_bad_attribute_is_reported_with_its_line() -> None:
    try:
        parse_text("request X key 1 versions 0\n  a int32 0+ bogus 1\n", "x.kdef")
    except SchemaError as exc:
        assert "x.kdef:2" in str(exc)
    else:
        raise AssertionError("expected SchemaError")
