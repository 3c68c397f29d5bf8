"""The hex helpers are exact inverses and agree with what they replaced."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ledger_api.core.hexes import bare, hex0x, pad32, text_of, to_int, unhex


@given(st.binary(max_size=80))
def test_hex_round_trips(raw: bytes) -> None:
    text = hex0x(raw)
    assert text == "0x" + raw.hex()
    assert unhex(text) == unhex(text[2:]) == unhex(text.upper().replace("0X", "0x")) == raw
    assert bare(raw) == bare(text) == bare(text.upper()) == raw.hex()
    assert hex0x(text) is text  # hex text is kept as it is


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=32))
def test_padded_text_reads_back(text: str) -> None:
    padded = pad32(text)
    assert len(padded) == 32
    assert text_of(padded) == text_of(hex0x(padded)) == text.rstrip("\0")


def test_quantities_and_non_ascii_text() -> None:
    assert to_int("0x1a") == to_int(26) == 26
    assert text_of("0x43ff59") == "C\ufffdY"
    assert text_of(b"CNY\0", strip_padding=False) == "CNY\0"
