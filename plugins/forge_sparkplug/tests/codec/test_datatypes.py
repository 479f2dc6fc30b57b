"""to_wire's answers by the value's exact type are the general conversion's, errors and all."""

from __future__ import annotations

import enum
import itertools

import pytest

from forge_sparkplug.codec.datatypes import SUPPORTED, DatatypeError, _to_wire, to_wire


class _Code(enum.IntEnum):
    ON = 1


_VALUES: list[object] = [
    0, 1, -1, 127, 128, -128, -129, 255, 256, 65535, 65536, -(2**31), 2**31 - 1, 2**31, 2**32 - 1, 2**32,
    -(2**63), 2**63 - 1, 2**63, 2**64 - 1, 2**64, 0.0, 1.0, -1.0, 1.5, float("nan"), float("inf"), True, False,
    "", "x", "AAEC", b"\x00", None, [1], _Code.ON,
]


def _answer(convert: object, datatype: int, value: object) -> tuple[str, object]:
    try:
        out = convert(datatype, value, "speed")  # type: ignore[operator]
    except DatatypeError as exc:
        return "error", str(exc)
    return type(out).__name__, out


@pytest.mark.parametrize("datatype", sorted(SUPPORTED | {0, 16, 19, 22}))
def test_to_wire_answers_as_the_general_conversion_for_every_kind_of_value(datatype: int) -> None:
    for value in _VALUES:
        fast, general = _answer(to_wire, datatype, value), _answer(_to_wire, datatype, value)
        if isinstance(value, float) and value != value:  # NaN is not equal to itself
            assert fast[0] == general[0] and (fast[0] == "error" or fast[1] != fast[1]), (datatype, value)
        else:
            assert fast == general, (datatype, value)


def test_an_out_of_range_integer_names_the_metric_by_its_name_or_alias() -> None:
    with pytest.raises(DatatypeError, match=r"metric 'speed' \(UInt8\): 256 is out of range"):
        to_wire(5, 256, "speed")
    with pytest.raises(DatatypeError, match=r"metric '7' \(Int8\): -129 is out of range"):
        to_wire(1, -129, 7)  # a DATA's metric by alias: named as str(alias), as before
    with pytest.raises(DatatypeError, match=r"metric 'None' \(String\): 3 is not a string"):
        to_wire(12, 3, None)


def test_signed_values_wrap_by_their_own_width() -> None:
    widths = {1: 8, 2: 16, 3: 32, 4: 64}
    for datatype, value in itertools.product(widths, (-1, -2, -(2**7))):
        assert to_wire(datatype, value) == value + (1 << widths[datatype])
