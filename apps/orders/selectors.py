"""Reads for orders: the ownership check every order lookup goes through.

Authorisation lives here, not in a prompt: an order is returned only to a
conversation whose verified customer id owns it, or to someone who repeats the
order number together with the email or phone given at checkout. Every other
case returns ``None``: an unknown order and someone else's order look the same.
"""

from __future__ import annotations

import hmac
import logging
import re
import unicodedata

from apps.orders.models import Order

logger = logging.getLogger(__name__)

# Compared against when the order does not exist, so both cases do the same work.
_ABSENT = "\x00absent\x00"
MIN_PHONE_DIGITS = 7
MAX_COUNTRY_CODE_DIGITS = 3


def normalize_order_number(value: str) -> str:
    """``" ds 2024 0501 "`` and full-width ``ＤＳ２０２４０５０１`` both become ``DS20240501``."""
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


def normalize_email(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip().casefold()


def normalize_phone(value: str) -> tuple[str, bool]:
    """Digits only, and whether the number was written with its country code (``+`` or ``00``).
    A national number loses its trunk ``0`` (UK ``07700 900123`` → ``7700900123``)."""
    text = unicodedata.normalize("NFKC", value).strip()
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        return digits, True
    if digits.startswith("00"):
        return digits[2:], True
    return digits.removeprefix("0"), False


def _same(given: str, stored: str) -> bool:
    return hmac.compare_digest(given.encode(), stored.encode())


def phone_matches(given: str, stored: str) -> bool:
    """Same number, with or without the country code and punctuation:
    ``138-0013-8000`` matches ``+86 138 0013 8000``; ``(415) 555-0134`` matches ``+1 415 555 0134``."""
    given_digits, given_international = normalize_phone(given)
    stored_digits, stored_international = normalize_phone(stored)
    if min(len(given_digits), len(stored_digits)) < MIN_PHONE_DIGITS:
        return False
    if len(given_digits) == len(stored_digits):
        return _same(given_digits, stored_digits)
    # One is written with a country code in front of the other's national number.
    (shorter, shorter_international), (longer, longer_international) = sorted(
        [(given_digits, given_international), (stored_digits, stored_international)],
        key=lambda number: len(number[0]),
    )
    if (
        shorter_international
        or not longer_international
        or len(longer) - len(shorter) > MAX_COUNTRY_CODE_DIGITS
    ):
        return False
    return _same(shorter, longer[len(longer) - len(shorter) :])


def order_for_customer(
    *,
    order_number: str,
    verified_customer_id: str = "",
    email: str = "",
    phone: str = "",
) -> Order | None:
    """The order, when (a) ``verified_customer_id`` (from a signed identity, never from
    what a visitor typed) owns it, or (b) ``email`` or ``phone`` matches the contact
    details on the order. ``None`` otherwise, whether or not the order exists.
    Refusals are logged with what was tried, never with the order's own data."""
    number = normalize_order_number(order_number)
    order = Order.objects.select_related("customer").filter(number=number).first() if number else None
    owner_id = order.customer.external_id if order else _ABSENT
    order_email = normalize_email(order.contact_email) if order and order.contact_email else _ABSENT
    order_phone = order.contact_phone if order else ""

    # Every proof is checked (no short cut), so the time taken says little about which matched.
    by_identity = bool(verified_customer_id) & _same(verified_customer_id.strip(), owner_id)
    by_email = bool(email.strip()) & _same(normalize_email(email), order_email)
    by_phone = bool(phone.strip()) & phone_matches(phone, order_phone)

    if order is not None and (by_identity or by_email or by_phone):
        proof = "verified_id" if by_identity else "email" if by_email else "phone"
        logger.info("order ownership proven", extra={"order": order.number, "proof": proof})
        return order
    logger.warning(
        "order ownership not proven; nothing returned",
        extra={
            # What the requester typed and which proofs they offered: their own input, none of the order's data.
            "order_number_given": number[:32],
            "proofs_offered": [
                name
                for name, value in (("verified_id", verified_customer_id), ("email", email), ("phone", phone))
                if value.strip()
            ],
            "requester_customer_id": verified_customer_id[:200],
        },
    )
    return None
