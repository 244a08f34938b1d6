"""Verified customer identity for the widget (the scheme of Intercom's identity verification).

The shop's server, which knows who is logged in, signs the customer's id with the knowledge
base's ``identity_secret``: ``hex(HMAC-SHA256(secret, customer_id))``. The page passes id and
signature to the widget, the widget sends both when it starts a conversation, and only a
matching signature makes the conversation's ``verified_customer_id``. What a visitor types, or
an id without a signature, never does.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from apps.knowledge.models import KnowledgeBase

MAX_CUSTOMER_ID_CHARS = 200  # Conversation.verified_customer_id


class IdentityRejected(Exception):
    """A signature was sent and does not match: the page (or someone) claims an id it cannot prove."""


@dataclass(frozen=True)
class ClaimedIdentity:
    customer_id: str
    signature: str


def customer_signature(*, secret: str, customer_id: str) -> str:
    """What the shop's server computes; here for tests and for documentation's sake."""
    return hmac.new(secret.encode(), customer_id.encode(), hashlib.sha256).hexdigest()


def verified_customer_id(*, knowledge_base: KnowledgeBase, claim: ClaimedIdentity) -> str:
    """The customer id to store on a new conversation: the claimed id when its signature is
    right, "" (anonymous) when verification is off or no signature came with the id.

    Raises ``IdentityRejected`` for a signature that does not match, so a page with a stale
    secret fails loudly instead of silently chatting anonymously."""
    if not knowledge_base.identity_secret:
        return ""  # verification off: an unsigned claim is worth nothing
    if not claim.signature:
        return ""
    if not claim.customer_id:
        raise IdentityRejected("a customer signature was sent without a customer id")
    expected = customer_signature(secret=knowledge_base.identity_secret, customer_id=claim.customer_id)
    # Constant time: a byte-by-byte compare would leak how much of a forged signature is right.
    if not hmac.compare_digest(expected.encode(), claim.signature.strip().lower().encode()):
        raise IdentityRejected("the customer signature does not match this customer id")
    return claim.customer_id
