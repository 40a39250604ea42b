"""Deterministic market simulator that writes exchange-native websocket trade files.

The demo and the scale tests need realistic raw input without any network access, and the ingest
layer needs *known* amounts of dirt (duplicates, late arrivals, malformed lines) so that its counters
can be checked exactly against ``SimulationResult``. Every line is one websocket message exactly as
Binance (combined-stream ``aggTrade``) or Kraken (websocket v1 ``trade``) sends it.

Only the standard library is used so the simulator can run anywhere, including in a bare container.

One module of ~500 lines on purpose: the market model, the two exchanges' message formats and the dirt
injected into them draw from one random stream per symbol, so the files are byte-identical for a seed; split apart,
their draws would have to be ordered across modules to keep that.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

SUPPORTED_EXCHANGES = ("binance", "kraken")
MALFORMED_REASONS = ("unparseable", "non_positive_price", "unknown_symbol", "missing_field")

NON_TRADE_RATE = 0.01
"""Heartbeat / depth-update lines per trade message (subscription acks at the very start come on top)."""
LATE_WINDOW = 0.1
"""Late lines land within this leading fraction of the next hour's file: they arrive just after the turn."""
DUPLICATE_MAX_DISTANCE = 1000
"""A re-sent message appears at most this many lines after its original, as a reconnect replay would."""
COUNT_JITTER = 0.1
"""Trades per symbol per hour are drawn uniformly from trades_per_hour * (1 +/- COUNT_JITTER)."""
HOURLY_VOLATILITY = 0.005
"""Relative standard deviation of the price over one hour, whatever the trade rate (split across trades)."""
HOURLY_MEAN_REVERSION = 0.1
"""Fraction of the gap to the reference level closed per hour, so long simulations keep realistic prices."""
MALFORMED_ID_BASE = 10**15
"""Binance ids of malformed trades start here, far above valid ids, so they never look like duplicates."""

_US_PER_HOUR = 3_600_000_000
_T = TypeVar("_T")
_SCALE = 8  # every price and quantity is written with 8 decimals
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. Rates are fractions of the trade messages of each output file."""

    start: datetime  # tz-aware UTC, hour-aligned
    hours: int = 3
    seed: int = 42
    trades_per_hour: int = 2000  # per symbol, on average
    duplicate_rate: float = 0.02  # fraction of trade messages re-sent verbatim later in the same file
    late_rate: float = 0.01  # fraction of trades written into the NEXT hour's file instead of their own
    malformed_rate: float = 0.005  # fraction of extra malformed lines inserted
    symbols: tuple[tuple[str, str], ...] = (
        ("binance", "BTCUSDT"),
        ("binance", "ETHUSDT"),
        ("binance", "XRPETH"),
        ("kraken", "XBT/USD"),
        ("kraken", "ETH/EUR"),
    )

    def __post_init__(self) -> None:
        start = self.start
        if start.tzinfo is None or start.utcoffset() != timedelta(0):
            raise ValueError(f"start must be timezone-aware UTC, got {start!r}")
        if (start.minute, start.second, start.microsecond) != (0, 0, 0):
            raise ValueError(f"start must be aligned to a whole hour, got {start.isoformat()}")
        if self.hours < 0 or self.trades_per_hour < 0:
            raise ValueError("hours and trades_per_hour must not be negative")
        for name in ("duplicate_rate", "late_rate", "malformed_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {rate}")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("symbols must not repeat")
        for exchange, symbol in self.symbols:
            if exchange not in SUPPORTED_EXCHANGES:
                raise ValueError(f"unsupported exchange {exchange!r}; expected one of {SUPPORTED_EXCHANGES}")
            if not symbol or not all(c.isalnum() or c in "/-_." for c in symbol):
                raise ValueError(
                    f"symbol {symbol!r} must be non-empty and contain only letters, digits, /-_."
                )


@dataclass(frozen=True)
class SimulationResult:
    """What was written, counted while writing, so ingest counters can be checked exactly."""

    files: tuple[Path, ...]
    trades: int  # distinct valid trades written
    duplicates: int  # verbatim re-sent trade lines
    late: int  # trades written into a later hour's file
    malformed: dict[str, int]  # reason -> count of malformed lines written
    non_trade: int  # heartbeat / subscription / other non-trade lines written


@dataclass(frozen=True)
class _Profile:
    """Reference price level, tick size, quantity step and mean trade size, as decimal strings."""

    price: str
    tick: str
    lot: str
    mean_qty: str


_PROFILES: dict[tuple[str, str], _Profile] = {
    ("binance", "BTCUSDT"): _Profile("60000", "0.01", "0.00001", "0.05"),
    ("binance", "ETHUSDT"): _Profile("3000", "0.01", "0.0001", "0.8"),
    ("binance", "XRPETH"): _Profile("0.00014", "0.00000001", "1", "150"),
    ("kraken", "XBT/USD"): _Profile("60000", "0.1", "0.00000001", "0.05"),
    ("kraken", "ETH/EUR"): _Profile("2800", "0.01", "0.00000001", "0.8"),
}
_DEFAULT_PROFILE = _Profile("100", "0.01", "0.001", "10")


def _units(value: str) -> int:
    """A decimal string as an exact integer count of 1e-8, the unit every printed number is built from."""
    return int(Decimal(value).scaleb(_SCALE))


def _fmt(units: int) -> str:
    """Integer 1e-8 units as the exchange's 8-decimal string; Decimal keeps it exact (no float)."""
    return f"{Decimal(units).scaleb(-_SCALE):f}"


def _kraken_time(us: int) -> str:
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def _random_round(rng: random.Random, expected: float) -> int:
    """Round up with probability equal to the fraction, so small files still get their share of dirt."""
    whole = int(expected)
    return whole + (1 if rng.random() < expected - whole else 0)


_WRITE_CHUNK = 8192
_TABLE_BITS = 12
_ID_BAND = 10**9
_PRICE_CACHE_LIMIT = 200_000  # formatted prices kept per symbol; walks revisit nearby ticks
_TABLE_MASK = (1 << _TABLE_BITS) - 1
_AGG_SPANS = (0, 0, 0, 0, 0, 1, 1, 2)  # extra underlying trades per aggTrade: most fill a single order
_KRAKEN_SIZES = (1, 1, 2, 3)  # trades per Kraken message


@dataclass
class _SymbolState:
    """Per-symbol stream state carried across hours: price, ids and the symbol's own random stream.

    Price moves and trade sizes are drawn from seeded tables of 4096 entries, indexed by random bits:
    one getrandbits call per trade instead of gauss/expovariate is what makes 1M trades take seconds.
    """

    exchange: str
    symbol: str
    rng: random.Random
    tick: int  # price tick in 1e-8 units; printed prices are whole ticks
    base: float  # reference level in ticks
    fair: float  # random-walk level in ticks; the printed price is it rounded to a tick
    reversion: float  # per-trade pull towards base
    steps: list[float]  # per-trade moves in ticks, normally distributed
    quantities: list[str]  # formatted trade sizes, exponentially distributed on the lot grid
    channel_id: int
    next_agg_id: int
    next_trade_id: int
    next_update_id: int
    symbol_json: str = field(init=False)
    stream_json: str = field(init=False)
    price_cache: dict[int, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.symbol_json = _JSON(self.symbol)
        self.stream_json = _JSON(f"{self.symbol.lower()}@aggTrade")

    @property
    def price(self) -> int:
        return max(1, round(self.fair))

    def price_str(self, ticks: int) -> str:
        return _fmt(ticks * self.tick)


def _new_state(config: SimulationConfig, exchange: str, symbol: str, index: int) -> _SymbolState:
    # A string seed (hashed with SHA-512 by random) gives every symbol an independent, stable stream.
    rng = random.Random(f"{config.seed}/{exchange}/{symbol}")
    profile = _PROFILES.get((exchange, symbol), _DEFAULT_PROFILE)
    tick, lot = max(1, _units(profile.tick)), max(1, _units(profile.lot))
    base = max(1.0, _units(profile.price) / tick)
    per_hour = max(1, config.trades_per_hour)
    sd = HOURLY_VOLATILITY * base / per_hour**0.5
    mean_lots = max(1.0, _units(profile.mean_qty) / lot)
    raw_steps = [rng.gauss(0.0, sd) for _ in range(1 << _TABLE_BITS)]
    drift = sum(raw_steps) / len(raw_steps)  # removed: a table reused 100k times would turn it into a trend
    return _SymbolState(
        exchange=exchange,
        symbol=symbol,
        rng=rng,
        tick=tick,
        base=base,
        fair=base,
        reversion=HOURLY_MEAN_REVERSION / per_hour,
        steps=[step - drift for step in raw_steps],
        quantities=[_fmt((1 + int(rng.expovariate(1.0 / mean_lots))) * lot) for _ in range(1 << _TABLE_BITS)],
        channel_id=100 + 8 * index,  # Kraken: one constant channel id per pair
        # Real Binance ids are per symbol and different symbols' ranges may overlap; here each symbol has
        # its own band (room for 9 * 10^8 trades) so a consumer keyed on the id alone still counts exactly.
        next_agg_id=(index + 1) * _ID_BAND + rng.randrange(_ID_BAND // 10),
        next_trade_id=(index + 1) * 10 * _ID_BAND + rng.randrange(_ID_BAND),
        next_update_id=rng.randrange(1_000_000_000, 9_000_000_000),
    )


def _sorted_offsets(rng: random.Random, n: int) -> list[int]:
    """n distinct microsecond offsets within the hour, sorted; distinct so no two trades are identical."""
    getrandbits = rng.getrandbits
    chosen: set[int] = set()
    while len(chosen) < n:
        candidates = [getrandbits(32) for _ in range(n - len(chosen))]
        chosen.update([x for x in candidates if x < _US_PER_HOUR])
    return sorted(chosen)


def _interleave(base: list[_T], inserts: list[tuple[int, _T]]) -> list[_T]:
    """base with each item inserted before base index `at`; inserts sorted by `at`. One linear pass."""
    out: list[_T] = []
    pos = 0
    for at, item in inserts:
        out.extend(base[pos:at])
        pos = at
        out.append(item)
    out.extend(base[pos:])
    return out


# A message is (trade time in microseconds, line, number of trades in it).
_Message = tuple[int, str, int]


def _binance_messages(st: _SymbolState, hour_start_us: int, n: int) -> list[_Message]:
    """n aggTrade messages in time order; the hot loop is kept local for speed."""
    getrandbits = st.rng.getrandbits
    steps, quantities, spans, mask = st.steps, st.quantities, _AGG_SPANS, _TABLE_MASK
    fair, base, reversion, tick, cache = st.fair, st.base, st.reversion, st.tick, st.price_cache
    agg_id, trade_id = st.next_agg_id, st.next_trade_id
    stream, symbol = st.stream_json, st.symbol_json
    out: list[_Message] = []
    for offset in _sorted_offsets(st.rng, n):
        us = hour_start_us + offset
        t_ms = us // 1000
        bits = getrandbits(32)  # 12 bits move, 12 bits size, 3 bits span, 1 bit maker, 4 bits delay
        fair += steps[bits & mask] + (base - fair) * reversion
        price = round(fair)
        p = cache.get(price)
        if p is None:
            p = cache[price] = _fmt(max(1, price) * tick)
        last_id = trade_id + spans[(bits >> 24) & 7]
        maker = "true" if bits & (1 << 27) else "false"
        event_ms = t_ms + (bits >> 28)  # E is stamped 0-15 ms after T
        line = (
            f'{{"stream":{stream},"data":{{"e":"aggTrade","E":{event_ms},"s":{symbol},"a":{agg_id},'
            f'"p":"{p}","q":"{quantities[(bits >> 12) & mask]}",'
            f'"f":{trade_id},"l":{last_id},"T":{t_ms},"m":{maker},"M":true}}}}'
        )
        out.append((us, line, 1))
        agg_id += 1
        trade_id = last_id + 1
    st.fair, st.next_agg_id, st.next_trade_id = fair, agg_id, trade_id
    if len(cache) > _PRICE_CACHE_LIMIT:
        cache.clear()
    return out


def _kraken_messages(st: _SymbolState, hour_start_us: int, n: int) -> list[_Message]:
    """n trades grouped into messages of 1-3 consecutive trades, as Kraken batches a taker sweep."""
    getrandbits = st.rng.getrandbits
    steps, quantities, mask = st.steps, st.quantities, _TABLE_MASK
    fair, base, reversion, tick, cache = st.fair, st.base, st.reversion, st.tick, st.price_cache
    head, tail = f"[{st.channel_id},[", f'],"trade",{st.symbol_json}]'
    times = [hour_start_us + offset for offset in _sorted_offsets(st.rng, n)]
    out: list[_Message] = []
    i = 0
    while i < n:
        header = getrandbits(3)
        size = min(_KRAKEN_SIZES[header & 3], n - i)
        side = "b" if header & 4 else "s"
        trades = []
        for us in times[i : i + size]:
            bits = getrandbits(25)  # 12 bits move, 12 bits size, 1 bit order type
            fair += steps[bits & mask] + (base - fair) * reversion
            price = round(fair)
            p = cache.get(price)
            if p is None:
                p = cache[price] = _fmt(max(1, price) * tick)
            order_type = "m" if bits >> 24 else "l"
            trades.append(
                f'["{p}","{quantities[(bits >> 12) & mask]}",'
                f'"{us // 1_000_000}.{us % 1_000_000:06d}","{side}","{order_type}",""]'
            )
        i += size
        # Keyed by the last trade: the message cannot be sent before it happened.
        out.append((times[i - 1], head + ",".join(trades) + tail, size))
    st.fair = fair
    if len(cache) > _PRICE_CACHE_LIMIT:
        cache.clear()
    return out


class _ExchangeWriter:
    """Builds one exchange's hourly files: merges symbols, then adds late, duplicate, malformed and
    non-trade lines at seeded positions."""

    def __init__(self, config: SimulationConfig, exchange: str, states: list[_SymbolState]) -> None:
        self.config = config
        self.exchange = exchange
        self.states = states
        self.pending_late: list[_Message] = []
        self.malformed_id = MALFORMED_ID_BASE
        configured = {symbol for _, symbol in config.symbols}
        unknown = "FOO/BAR" if exchange == "kraken" else "FOOBAR"
        while unknown in configured:
            unknown += "X"
        self.unknown_symbol = unknown
        self.trades = self.duplicates = self.late = self.non_trade = 0
        self.malformed = dict.fromkeys(MALFORMED_REASONS, 0)

    def hour_lines(self, hour: int, hour_start_us: int) -> list[str]:
        config = self.config
        rng = random.Random(f"{config.seed}/{self.exchange}/hour/{hour}")
        is_last = hour == config.hours - 1
        on_time: list[tuple[int, int, str]] = []
        late_now: list[_Message] = []
        make = _kraken_messages if self.exchange == "kraken" else _binance_messages
        for index, st in enumerate(self.states):
            n = round(config.trades_per_hour * st.rng.uniform(1 - COUNT_JITTER, 1 + COUNT_JITTER))
            messages = make(st, hour_start_us, n)
            self.trades += n
            late_count = 0 if is_last else _random_round(st.rng, config.late_rate * len(messages))
            late_idx = set(st.rng.sample(range(len(messages)), late_count))
            on_time.extend((us, index, line) for j, (us, line, _) in enumerate(messages) if j not in late_idx)
            late_now.extend(messages[j] for j in sorted(late_idx))
        on_time.sort()  # merge symbols by trade time; (us, index) is unique so lines never compare

        # Stage A: on-time trades plus the previous hour's late trades, which arrive shortly after the turn.
        window = int(len(on_time) * LATE_WINDOW) + 1
        late_at = sorted((rng.randrange(window), k) for k in range(len(self.pending_late)))
        lines = _interleave([m[2] for m in on_time], [(at, self.pending_late[k][1]) for at, k in late_at])
        times = _interleave([m[0] for m in on_time], [(at, self.pending_late[k][0]) for at, k in late_at])
        self.late += sum(size for _, _, size in self.pending_late)
        self.pending_late = late_now

        # Stage B: extras, each inserted before stage-A index `at`; a duplicate always after its original.
        n_a = len(lines)
        extras: list[tuple[int, int, str]] = []
        for original in sorted(rng.sample(range(n_a), _random_round(rng, config.duplicate_rate * n_a))):
            at = rng.randint(original + 1, min(n_a, original + DUPLICATE_MAX_DISTANCE))
            extras.append((at, len(extras), lines[original]))
        self.duplicates += len(extras)
        for _ in range(_random_round(rng, config.malformed_rate * n_a)):
            at = rng.randrange(n_a + 1)
            reason = rng.choice(MALFORMED_REASONS)
            us = max(hour_start_us, times[at - 1]) if at else hour_start_us
            extras.append((at, len(extras), self._malformed_line(rng, reason, us)))
            self.malformed[reason] += 1
        for _ in range(_random_round(rng, NON_TRADE_RATE * n_a)):
            at = rng.randrange(n_a + 1)
            us = max(hour_start_us, times[at - 1]) if at else hour_start_us
            extras.append((at, len(extras), self._non_trade_line(rng, us)))
            self.non_trade += 1
        extras.sort()

        head = self._subscription_lines() if hour == 0 else []
        self.non_trade += len(head)
        return head + _interleave(lines, [(at, line) for at, _, line in extras])

    def _subscription_lines(self) -> list[str]:
        """What the exchange sends right after connecting, at the top of the first file (Kraken only)."""
        if self.exchange == "binance":
            return []  # a combined-stream URL subscription sends no acknowledgement
        lines = [
            _JSON(
                {
                    "connectionID": 8628615390848610000,
                    "event": "systemStatus",
                    "status": "online",
                    "version": "1.9.0",
                }
            )
        ]
        for st in self.states:
            lines.append(
                _JSON(
                    {
                        "channelID": st.channel_id,
                        "channelName": "trade",
                        "event": "subscriptionStatus",
                        "pair": st.symbol,
                        "status": "subscribed",
                        "subscription": {"name": "trade"},
                    }
                )
            )
        return lines

    def _non_trade_line(self, rng: random.Random, us: int) -> str:
        if self.exchange == "kraken":
            return '{"event":"heartbeat"}'
        st = rng.choice(self.states)
        first = st.next_update_id
        last = first + rng.randint(0, 20)
        st.next_update_id = last + 1
        bid = st.price_str(max(1, st.price - rng.randint(1, 5)))
        ask = st.price_str(st.price + rng.randint(1, 5))
        qty = rng.choice(st.quantities)
        book = {"b": [[bid, qty]], "a": [[ask, qty]] if rng.random() < 0.5 else []}
        data = {"e": "depthUpdate", "E": us // 1000, "s": st.symbol, "U": first, "u": last, **book}
        return _JSON({"stream": f"{st.symbol.lower()}@depth@100ms", "data": data})

    def _malformed_line(self, rng: random.Random, reason: str, us: int) -> str:
        """One line with exactly one defect; Binance ones get ids from a separate high range."""
        st = rng.choice(self.states)
        price = (
            st.price_str(st.price)
            if reason != "non_positive_price"
            else rng.choice(("0.00000000", "-1.00000000"))
        )
        qty = rng.choice(st.quantities)
        symbol = self.unknown_symbol if reason == "unknown_symbol" else st.symbol
        if self.exchange == "kraken":
            trade = [price, qty, _kraken_time(us), rng.choice("bs"), rng.choice("lm"), ""]
            if reason == "missing_field":
                del trade[0]
            channel = st.channel_id if reason != "unknown_symbol" else 999_999
            line = _JSON([channel, [trade], "trade", symbol])
        else:
            agg_id = self.malformed_id
            self.malformed_id += 1
            t_ms = us // 1000
            data = {
                "e": "aggTrade",
                "E": t_ms,
                "s": symbol,
                "a": agg_id,
                "p": price,
                "q": qty,
                "f": agg_id,
                "l": agg_id,
                "T": t_ms,
                "m": rng.random() < 0.5,
                "M": True,
            }
            if reason == "missing_field":
                del data["p"]
            line = _JSON({"stream": f"{symbol.lower()}@aggTrade", "data": data})
        if reason == "unparseable":
            # Any proper prefix of a JSON object or array is invalid JSON: the outer bracket never closes.
            line = line[: rng.randrange(len(line) // 3, len(line) - 1)]
        return line


def _write_lines(path: Path, lines: list[str]) -> None:
    """Write in chunks: one giant join of a 100+ MB file costs more in fresh memory than it saves."""
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for i in range(0, len(lines), _WRITE_CHUNK):
            fh.write("\n".join(lines[i : i + _WRITE_CHUNK]))
            fh.write("\n")


def _file_name(exchange: str, hour_start: datetime) -> str:
    return f"{exchange}-ws-{hour_start.astimezone(UTC):%Y%m%dT%H}.jsonl"


def simulate_market(config: SimulationConfig, out_dir: Path) -> SimulationResult:
    """Write one file per exchange per hour into out_dir (created if needed) and count what went in.

    Same config => byte-identical files. Hours are generated in order because late trades of hour h
    are carried into hour h+1's file; memory is bounded by one hour of one exchange.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    writers: list[_ExchangeWriter] = []
    for exchange in SUPPORTED_EXCHANGES:
        symbols = [symbol for ex, symbol in config.symbols if ex == exchange]
        if symbols:
            states = [_new_state(config, exchange, symbol, i) for i, symbol in enumerate(symbols)]
            writers.append(_ExchangeWriter(config, exchange, states))

    start_us = int(config.start.timestamp()) * 1_000_000
    files: list[Path] = []
    for hour in range(config.hours):
        hour_start = config.start + timedelta(hours=hour)
        for writer in writers:
            lines = writer.hour_lines(hour, start_us + hour * _US_PER_HOUR)
            path = out_dir / _file_name(writer.exchange, hour_start)
            _write_lines(path, lines)
            files.append(path)

    malformed = dict.fromkeys(MALFORMED_REASONS, 0)
    for writer in writers:
        for reason, count in writer.malformed.items():
            malformed[reason] += count
    return SimulationResult(
        files=tuple(files),
        trades=sum(w.trades for w in writers),
        duplicates=sum(w.duplicates for w in writers),
        late=sum(w.late for w in writers),
        malformed=malformed,
        non_trade=sum(w.non_trade for w in writers),
    )
