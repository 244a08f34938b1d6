"""Order ownership: the order comes back only to its owner or to someone who proves it; never a hint otherwise.

Personas from the demo data: 李伟 (lumen-c-10001) owns DS20240501; Emma Clarke
(lumen-c-10002) owns DS20240502 and DS20240503.
"""

from __future__ import annotations

import logging

import pytest

from apps.orders.selectors import normalize_order_number, order_for_customer, phone_matches

pytestmark = pytest.mark.usefixtures("demo_orders")

LI_WEI = "lumen-c-10001"
EMMA = "lumen-c-10002"


def test_the_owner_by_verified_id() -> None:
    order = order_for_customer(order_number="DS20240501", verified_customer_id=LI_WEI)
    assert order is not None and order.number == "DS20240501"
    assert order.customer.external_id == LI_WEI


@pytest.mark.parametrize(
    ("number", "email"),
    [
        ("DS20240501", "li.wei@example.cn"),
        (" ds20240501 ", "  LI.WEI@Example.CN "),
        ("ＤＳ２０２４０５０１", "ｌｉ.ｗｅｉ@example.cn"),  # full-width, as a Chinese keyboard may type it
        ("DS 2024 0501", "Li.Wei@EXAMPLE.cn\n"),
    ],
)
def test_order_number_plus_email(number: str, email: str) -> None:
    order = order_for_customer(order_number=number, email=email)
    assert order is not None and order.number == "DS20240501"


@pytest.mark.parametrize(
    ("number", "phone"),
    [
        ("DS20240501", "+86 138 0013 8000"),
        ("DS20240501", "138-0013-8000"),
        ("DS20240501", "(138) 0013.8000"),
        ("DS20240501", "0086 13800138000"),
        ("DS20240501", "＋８６ １３８００１３８０００"),
        ("DS20240502", "07700 900123"),  # UK national format, trunk 0
        ("DS20240506", "415-555-0134"),  # US, without the country code
    ],
)
def test_order_number_plus_phone_with_punctuation(number: str, phone: str) -> None:
    order = order_for_customer(order_number=number, phone=phone)
    assert order is not None and order.number == number


@pytest.mark.parametrize(
    "proof",
    [
        {"email": "li.wei@example.com"},  # close, but not the same address
        {"email": "emma.clarke@example.co.uk"},  # another customer's email
        {"phone": "+44 7700 900123"},  # another customer's phone
        {"phone": "8000"},  # too short to prove anything
        {"phone": "+1 138 0013 8000"},  # right number, wrong country
        {"email": "", "phone": ""},
        {},
        {"verified_customer_id": EMMA},  # another customer's verified identity
        {"verified_customer_id": LI_WEI.upper()},
        {"verified_customer_id": EMMA, "email": "emma.clarke@example.co.uk"},
    ],
)
def test_anything_else_gets_nothing(proof: dict[str, str]) -> None:
    assert order_for_customer(order_number="DS20240501", **proof) is None


def test_an_unknown_order_looks_exactly_like_someone_elses(caplog) -> None:
    caplog.set_level(logging.INFO, logger="apps.orders.selectors")
    someone_elses = order_for_customer(order_number="DS20240501", email="emma.clarke@example.co.uk")
    unknown = order_for_customer(order_number="DS29999999", email="emma.clarke@example.co.uk")
    assert someone_elses is None and unknown is None
    refusals = [record for record in caplog.records if record.name == "apps.orders.selectors"]
    assert [record.getMessage() for record in refusals] == [
        "order ownership not proven; nothing returned"
    ] * 2
    assert {tuple(record.proofs_offered) for record in refusals} == {("email",)}


def test_refusals_are_logged_without_the_other_customers_data(caplog) -> None:
    caplog.set_level(logging.INFO, logger="apps.orders.selectors")
    assert (
        order_for_customer(order_number="DS20240501", verified_customer_id=EMMA, phone="+44 7700 900123")
        is None
    )
    (record,) = [record for record in caplog.records if record.name == "apps.orders.selectors"]
    logged = repr(record.__dict__)
    assert record.levelno == logging.WARNING
    assert record.order_number_given == "DS20240501"
    assert record.requester_customer_id == EMMA
    for owners_data in (
        "李伟",
        LI_WEI,
        "li.wei@example.cn",
        "13800138000",
        "138 0013 8000",
        "459.00",
        "SF1402938475610",
    ):
        assert owners_data not in logged


def test_proven_lookups_are_logged_with_the_proof(caplog) -> None:
    caplog.set_level(logging.INFO, logger="apps.orders.selectors")
    order = order_for_customer(order_number="DS20240503", email="EMMA.CLARKE@example.co.uk")
    assert order is not None and order.customer.external_id == EMMA
    (record,) = [record for record in caplog.records if record.name == "apps.orders.selectors"]
    assert (record.getMessage(), record.order, record.proof) == (
        "order ownership proven",
        "DS20240503",
        "email",
    )


@pytest.mark.parametrize(
    ("given", "stored", "expected"),
    [
        ("13800138000", "+86 138 0013 8000", True),
        ("+8613800138000", "+86 138 0013 8000", True),
        ("+86 13800138000", "13800138000", True),
        ("13800138001", "+86 138 0013 8000", False),
        ("38000138000", "+86 138 0013 8000", False),
        ("0013800138000", "+86 138 0013 8000", False),  # 00 means international: 13 is not China
        ("4155550134", "4155550134", True),
        ("4155550134", "14155550134", False),  # neither written with a country code
        ("555-0134", "+1 415 555 0134", False),
        ("", "", False),
    ],
)
def test_phone_matching(given: str, stored: str, expected: bool) -> None:
    assert phone_matches(given, stored) is expected


def test_order_number_normalisation() -> None:
    assert normalize_order_number("  ds2024\u30000501 ") == "DS20240501"
