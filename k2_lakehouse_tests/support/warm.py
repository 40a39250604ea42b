"""Plain helpers for warm-tier tests: Binance WebSocket lines, good and bad, stamped around this hour.

Tests import these by name (fixtures stay in the conftest files).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from k2_lakehouse.hours import HourRange


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


NOW = datetime.now(UTC)
HOUR = NOW.replace(minute=0, second=0, microsecond=0)
T_MS = int((HOUR + timedelta(minutes=1)).timestamp() * 1000)


def agg_event(agg_id: int, **overrides: object) -> str:
    """A Binance aggTrade line stamped a minute into this hour; an override of None drops the field."""
    event = {"e": "aggTrade", "E": T_MS, "s": "BTCUSDT", "a": agg_id, "p": "60000.10000000", "q": "0.50000000",
             "f": agg_id * 10, "l": agg_id * 10 + 2, "T": T_MS, "m": True, "M": True}
    event.update(overrides)
    event = {k: v for k, v in event.items() if v is not None}
    return json.dumps({"stream": "btcusdt@aggTrade", "data": event})


BAD_LINES = {
    "unparseable": '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","s":"BTCUSDT"',
    "missing_field": agg_event(2, p=None),
    "wrong_type": agg_event(3, p=60000.1),
    "non_positive_price": agg_event(4, p="0.00000000"),
    "non_positive_quantity": agg_event(5, q="-1.00000000"),
    "non_finite": agg_event(6, p="NaN"),
    "unknown_symbol": agg_event(7, s="FOOBAR"),
    "timestamp_too_old": agg_event(8, T=1_000_000_000_000),
    "timestamp_in_future": agg_event(9, T=int((NOW + timedelta(hours=1)).timestamp() * 1000)),
    "too_many_digits": agg_event(10, p="0.1234567890123"),
    "quote_volume_out_of_range": agg_event(13, p="1000000000.00000000", q="1000000.00000000"),
}
VALIDATION_REASONS = {"non_positive_price", "non_positive_quantity", "non_finite", "unknown_symbol", "timestamp_too_old",
                      "timestamp_in_future", "too_many_digits", "quote_volume_out_of_range"}
DEPTH = json.dumps({"stream": "btcusdt@depth", "data": {"e": "depthUpdate", "E": T_MS, "s": "BTCUSDT", "b": [], "a": []}})


def all_hours() -> HourRange:
    """The hours around now that every line above is filed under."""
    # Wide enough for the too-old and future messages, which are filed under their arrival hour.
    return HourRange(HOUR - timedelta(hours=2), HOUR + timedelta(hours=2))
