"""Resources the operator owns (created without a buyer): shared with buyers, changed and watched by the operator.

A buyer-less document (an operator's SFT test profile, PM profile) may be *used* by every buyer where its API
says so, but only the operator changes it (:func:`check_writable`: a buyer gets a 403 ``accessDenied``), and its
events go to the operator's subscriptions only: the hub sends an event addressed to a buyer to that buyer's
subscriptions and to buyer-less ones, so addressing it to :data:`OPERATOR_AUDIENCE`, a name no buyer may have
(token and client files reserve it), reaches the operator alone. An event addressed to no buyer at all would
reach every buyer.
"""

from __future__ import annotations

from interlude.errors import RequestError

OPERATOR_AUDIENCE = "operator"


def event_audience(owner: str | None) -> str:
    """Whom an event about a resource of ``owner`` (None: the operator) is addressed to."""
    return OPERATOR_AUDIENCE if owner is None else owner


def check_writable(owner: str | None, caller: str | None, what: str) -> None:
    """Refuse (403) a buyer changing an operator-owned resource; the operator (caller None) changes anything."""
    if caller is not None and owner is None:
        raise RequestError(403, "accessDenied", f"{what} belongs to the operator: buyers may use it, not change it")
