"""Small pieces SFT and FM share: time handling, buyer-visible document pages, durations.

Both APIs keep their entities as generic store documents (``interlude.store`` ``documents`` table): the MEF
body as the entity shows it under ``body["mef"]`` and our bookkeeping under ``body["internal"]``. Lists
filter in Python over the buyer's documents (filters of these APIs reach into nested bodies), which is fine
at partner scale (thousands of jobs); a PostgreSQL store could push them down later.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from interlude.domain.model import iso, parse_iso, utcnow
from interlude.errors import ValidationError
from interlude.store.base import Document, Store

SCAN_PAGE = 1000
PAST_TOLERANCE_S = 60.0
"""A requested start this far in the past still means "now" (clock skew between SP and partner)."""


def now_iso() -> str:
    """The current time as the store and the API write it."""
    return iso(utcnow()) or ""


def iso_at(ts: float) -> str:
    """A UNIX time as an ISO string."""
    return iso(datetime.fromtimestamp(ts, tz=UTC)) or ""


def to_ts(value: str | None, path: str | None = None) -> float | None:
    """An ISO date-time as a UNIX time (:class:`ValidationError` ``invalidFormat`` at ``path`` otherwise)."""
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"{value!r} is not an ISO-8601 date-time", path, "invalidFormat")
    try:
        dt = parse_iso(value)
    except ValueError:
        raise ValidationError(f"{value!r} is not an ISO-8601 date-time", path, "invalidFormat") from None
    return dt.timestamp() if dt is not None else None


def check_window(start: str | None, end: str | None, start_path: str, end_path: str) -> tuple[float, float | None]:
    """Validate a requested start/end; returns (due time of the first run, end time or None)."""
    now = time.time()
    start_ts = to_ts(start, start_path)
    end_ts = to_ts(end, end_path)
    if start_ts is not None and start_ts < now - PAST_TOLERANCE_S:
        raise ValidationError(f"the start {start} is in the past", start_path, "invalidValue")
    due = max(now, start_ts) if start_ts is not None else now
    if end_ts is not None:
        if end_ts <= now:
            raise ValidationError(f"the end {end} is in the past", end_path, "invalidValue")
        if end_ts <= due:
            raise ValidationError("the end must be after the start", end_path, "invalidValue")
    return due, end_ts


_SFT_UNITS = {"seconds": 1, "minutes": 60, "calendarHours": 3600, "calendarDays": 86400}
_FM_UNITS = {"MS": 1e-3, "SEC": 1, "MIN": 60, "HOUR": 3600, "DAY": 86400, "WEEK": 604800, "US": 1e-6, "NS": 1e-9}


def sft_duration_s(value: Mapping[str, Any], path: str) -> float:
    """Seconds of an SFT ``Duration`` ({amount, units}); business/month/year units are refused (ambiguous)."""
    units = value.get("units")
    amount = value.get("amount")
    if units not in _SFT_UNITS:
        raise ValidationError(f"units {units!r} are not supported; use one of {sorted(_SFT_UNITS)}",
                              f"{path}/units", "invalidValue")  # fmt: skip
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ValidationError("amount must be a positive integer", f"{path}/amount", "invalidValue")
    return float(amount * _SFT_UNITS[units])


def fm_duration_s(value: Mapping[str, Any], path: str) -> float:
    """Seconds of an FM ``TimeDuration`` ({timeDurationValue, timeDurationUnits}); MONTH/YEAR are refused."""
    units = value.get("timeDurationUnits")
    amount = value.get("timeDurationValue")
    if units not in _FM_UNITS:
        raise ValidationError(f"timeDurationUnits {units!r} is not supported; use one of {sorted(_FM_UNITS)}",
                              f"{path}/timeDurationUnits", "invalidValue")  # fmt: skip
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ValidationError("timeDurationValue must be a positive integer", f"{path}/timeDurationValue",
                              "invalidValue")  # fmt: skip
    return float(amount * _FM_UNITS[units])


async def visible_documents(
    store: Store,
    collection: str,
    buyer: str | None,
    predicate: Callable[[Document], bool] | None = None,
    *,
    state: str | None = None,
    key1: str | None = None,
    key2: str | None = None,
) -> list[Document]:
    """Documents the buyer may see (its own and buyer-less ones; every one for the operator), newest first.

    ``state``/``key1``/``key2`` are applied by the store (list filters that map onto them are pushed down);
    the buyer is filtered here, because buyer-less documents are visible to every buyer and the store can only
    match one buyer. Every matching document is read, in pages of :data:`SCAN_PAGE` (no silent cap: a list
    that stopped at the first N documents would drop the oldest and report a wrong ``X-Total-Count``).
    """
    out: list[Document] = []
    offset = 0
    while True:
        docs, total = await store.list_documents(
            collection, state=state, key1=key1, key2=key2, offset=offset, limit=SCAN_PAGE
        )
        out.extend(
            d for d in docs if (buyer is None or d.buyer in (None, buyer)) and (predicate is None or predicate(d))
        )
        offset += len(docs)
        if not docs or offset >= total:
            return out


def between(value: str | None, gt: str | None, lt: str | None) -> bool:
    """``gt < value < lt`` on normalised ISO strings (absent bounds match; an absent value matches none)."""
    if gt is None and lt is None:
        return True
    if value is None:
        return False
    norm = iso(parse_iso(value)) or ""
    return (gt is None or norm > gt) and (lt is None or norm < lt)


def next_run(start: float, period_s: float, run: int, now: float | None = None) -> tuple[int, float]:
    """The run after ``run`` of a periodic job (run ``r`` is due at ``start + (r - 1) * period``).

    Periods that already passed (the partner was down) are skipped rather than run in a burst: the next run
    is the first one due at or after ``now``.
    """
    now = time.time() if now is None else now
    nxt = run + 1
    due = start + run * period_s
    if due < now:
        k = math.ceil((now - start) / period_s)
        nxt, due = k + 1, start + k * period_s
    return nxt, due
