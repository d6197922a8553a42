"""Schemathesis hooks for the contract check (scripts/contract.sh).

The OpenAPI document marks RUTs with `format: rut`: a Chilean RUT whose last character is the
módulo 11 check digit of the number. No pattern can state a check digit, so this teaches the
generator the format; the server refuses a wrong check digit with 422, which is the contract.
"""

from hypothesis import strategies as st

import schemathesis


def check_digit(number: int) -> str:
    total, factor = 0, 2
    while number > 0:
        total += (number % 10) * factor
        number //= 10
        factor = 2 if factor == 7 else factor + 1
    digit = 11 - total % 11
    return {11: "0", 10: "K"}.get(digit, str(digit))


def spelled(number: int, dots: bool, dash: bool, lower: bool) -> str:
    body = f"{number:,}".replace(",", ".") if dots else str(number)
    dv = check_digit(number)
    dv = dv.lower() if lower else dv
    return f"{body}-{dv}" if dash else f"{body}{dv}"


ruts = st.builds(
    spelled,
    st.integers(min_value=100_000, max_value=99_999_999),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)

schemathesis.openapi.format("rut", ruts)
