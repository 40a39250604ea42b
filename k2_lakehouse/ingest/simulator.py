"""Deterministic market simulator that writes exchange-native websocket trade files.

The demo and the scale tests need realistic raw input without any network access, and the ingest
layer needs *known* amounts of dirt (duplicates, late arrivals, malformed lines) so that its counters
can be checked exactly against ``SimulationResult``. Every line is one websocket message exactly as
Binance (combined-stream ``aggTrade``) or Kraken (websocket v1 ``trade``) sends it.

Only the standard library is used so the simulator can run anywhere, including in a bare container.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

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
PRICE_VOLATILITY = 0.0001
"""Relative standard deviation of the price move per trade (about 0.45% per hour at 2000 trades)."""
MEAN_REVERSION = 0.0001
"""Per-trade pull back towards the reference level, so long simulations stay at realistic prices."""
MALFORMED_ID_BASE = 10**12
"""Binance ids of malformed trades start here, far above valid ids, so they never look like duplicates."""

_US_PER_HOUR = 3_600_000_000
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
    """A decimal string as an integer count of 1e-8, so the random walk stays exact."""
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


@dataclass
class _SymbolState:
    """Per-symbol stream state carried across hours: price, ids, own random stream."""

    exchange: str
    symbol: str
    rng: random.Random
    base: int
    price: int
    tick: int
    lot: int
    mean_lots: float
    channel_id: int = 0
    next_agg_id: int = 0
    next_trade_id: int = 0
    next_update_id: int = 0
    symbol_json: str = field(init=False)
    stream_json: str = field(init=False)

    def __post_init__(self) -> None:
        self.symbol_json = _JSON(self.symbol)
        self.stream_json = _JSON(f"{self.symbol.lower()}@aggTrade")


def _new_state(config: SimulationConfig, exchange: str, symbol: str, channel_id: int) -> _SymbolState:
    # A string seed (hashed with SHA-512 by random) gives every symbol an independent, stable stream.
    rng = random.Random(f"{config.seed}/{exchange}/{symbol}")
    profile = _PROFILES.get((exchange, symbol), _DEFAULT_PROFILE)
    base, tick, lot = _units(profile.price), max(1, _units(profile.tick)), max(1, _units(profile.lot))
    state = _SymbolState(
        exchange=exchange,
        symbol=symbol,
        rng=rng,
        base=base,
        price=max(tick, base // tick * tick),
        tick=tick,
        lot=lot,
        mean_lots=max(1.0, _units(profile.mean_qty) / lot),
        channel_id=channel_id,
    )
    state.next_agg_id = rng.randrange(100_000_000, 2_000_000_000)
    state.next_trade_id = rng.randrange(2_000_000_000, 4_000_000_000)
    state.next_update_id = rng.randrange(1_000_000_000, 9_000_000_000)
    return state


# A message is (trade time in microseconds, line, number of trades in it).
_Message = tuple[int, str, int]


def _binance_messages(st: _SymbolState, hour_start_us: int, n: int) -> list[_Message]:
    """n aggTrade messages in time order; the hot loop is kept local for speed."""
    rng = st.rng
    gauss, expovariate, random_ = rng.gauss, rng.expovariate, rng.random
    price, tick, base, lot = st.price, st.tick, st.base, st.lot
    lam = 1.0 / st.mean_lots
    agg_id, trade_id = st.next_agg_id, st.next_trade_id
    stream, symbol = st.stream_json, st.symbol_json
    out: list[_Message] = []
    for offset in sorted(rng.sample(range(_US_PER_HOUR), n)):
        us = hour_start_us + offset
        t_ms = us // 1000
        step = round(gauss(-MEAN_REVERSION * (price - base) / tick, PRICE_VOLATILITY * price / tick))
        price = max(tick, price + step * tick)
        qty = (1 + int(expovariate(lam))) * lot
        r = random_()
        last_id = trade_id + (0 if r < 0.7 else 1 if r < 0.9 else 2)  # most aggTrades fill one order
        maker = "true" if random_() < 0.5 else "false"
        event_ms = t_ms + int(random_() * 40)  # E is stamped a few ms after T
        line = (
            f'{{"stream":{stream},"data":{{"e":"aggTrade","E":{event_ms},"s":{symbol},"a":{agg_id},'
            f'"p":"{_fmt(price)}","q":"{_fmt(qty)}","f":{trade_id},"l":{last_id},"T":{t_ms},'
            f'"m":{maker},"M":true}}}}'
        )
        out.append((us, line, 1))
        agg_id += 1
        trade_id = last_id + 1
    st.price, st.next_agg_id, st.next_trade_id = price, agg_id, trade_id
    return out


def _kraken_messages(st: _SymbolState, hour_start_us: int, n: int) -> list[_Message]:
    """n trades grouped into messages of 1-3 consecutive trades, as Kraken batches a taker sweep."""
    rng = st.rng
    gauss, expovariate, random_, randint = rng.gauss, rng.expovariate, rng.random, rng.randint
    price, tick, base, lot = st.price, st.tick, st.base, st.lot
    lam = 1.0 / st.mean_lots
    head, tail = f"[{st.channel_id},[", f'],"trade",{st.symbol_json}]'
    offsets = sorted(rng.sample(range(_US_PER_HOUR), n))  # distinct, so no two messages are identical
    out: list[_Message] = []
    i = 0
    while i < n:
        size = min(randint(1, 3), n - i)
        side = "b" if random_() < 0.5 else "s"
        trades = []
        for offset in offsets[i : i + size]:
            step = round(gauss(-MEAN_REVERSION * (price - base) / tick, PRICE_VOLATILITY * price / tick))
            price = max(tick, price + step * tick)
            qty = (1 + int(expovariate(lam))) * lot
            order_type = "m" if random_() < 0.6 else "l"
            trades.append(
                f'["{_fmt(price)}","{_fmt(qty)}","{_kraken_time(hour_start_us + offset)}",'
                f'"{side}","{order_type}",""]'
            )
        # Keyed by the last trade: the message cannot be sent before it happened.
        out.append((hour_start_us + offsets[i + size - 1], head + ",".join(trades) + tail, size))
        i += size
    st.price = price
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
        for index, st in enumerate(self.states):
            n = round(config.trades_per_hour * st.rng.uniform(1 - COUNT_JITTER, 1 + COUNT_JITTER))
            make = _kraken_messages if self.exchange == "kraken" else _binance_messages
            messages = make(st, hour_start_us, n)
            self.trades += n
            late_count = 0 if is_last else _random_round(st.rng, config.late_rate * len(messages))
            late_idx = set(st.rng.sample(range(len(messages)), late_count))
            for j, (us, line, size) in enumerate(messages):
                if j in late_idx:
                    late_now.append((us, line, size))
                else:
                    on_time.append((us, index, line))
        on_time.sort()  # merge symbols by trade time; (us, index) is unique so lines never compare

        # Stage A: on-time trades plus the previous hour's late trades, which arrive shortly after the turn.
        window = int(len(on_time) * LATE_WINDOW) + 1
        inserts = sorted((rng.randrange(window), k) for k in range(len(self.pending_late)))
        lines: list[str] = []
        times: list[int] = []
        pos = 0
        for at, k in inserts:
            for us, _, line in on_time[pos:at]:
                lines.append(line)
                times.append(us)
            pos = max(pos, at)
            us, line, size = self.pending_late[k]
            lines.append(line)
            times.append(us)
            self.late += size
        for us, _, line in on_time[pos:]:
            lines.append(line)
            times.append(us)
        self.pending_late = late_now

        # Stage B: extra lines, each inserted before stage-A index `at` (duplicates always after the original).
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

        out = self._subscription_lines() if hour == 0 else []
        self.non_trade += len(out)
        pos = 0
        for at, _, line in extras:
            out.extend(lines[pos:at])
            pos = at
            out.append(line)
        out.extend(lines[pos:])
        return out

    def _subscription_lines(self) -> list[str]:
        """What the exchange sends right after connecting, at the top of the first file."""
        if self.exchange == "binance":
            return [_JSON({"result": None, "id": 1})]
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
        bid = max(st.tick, st.price - rng.randint(1, 5) * st.tick)
        ask = st.price + rng.randint(1, 5) * st.tick
        qty = (1 + int(rng.expovariate(1.0 / st.mean_lots))) * st.lot
        book = {"b": [[_fmt(bid), _fmt(qty)]], "a": [[_fmt(ask), _fmt(qty)]] if rng.random() < 0.5 else []}
        data = {"e": "depthUpdate", "E": us // 1000, "s": st.symbol, "U": first, "u": last, **book}
        return _JSON({"stream": f"{st.symbol.lower()}@depth@100ms", "data": data})

    def _malformed_line(self, rng: random.Random, reason: str, us: int) -> str:
        """One line with exactly one defect; Binance ones get ids from a separate high range."""
        st = rng.choice(self.states)
        price = (
            _fmt(st.price) if reason != "non_positive_price" else rng.choice(("0.00000000", "-1.00000000"))
        )
        qty = _fmt((1 + int(rng.expovariate(1.0 / st.mean_lots))) * st.lot)
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
            states = [_new_state(config, exchange, s, channel_id=100 + 8 * i) for i, s in enumerate(symbols)]
            writers.append(_ExchangeWriter(config, exchange, states))

    start_us = int(config.start.timestamp()) * 1_000_000
    files: list[Path] = []
    for hour in range(config.hours):
        hour_start = config.start + timedelta(hours=hour)
        for writer in writers:
            lines = writer.hour_lines(hour, start_us + hour * _US_PER_HOUR)
            path = out_dir / _file_name(writer.exchange, hour_start)
            with path.open("w", encoding="utf-8", newline="\n") as fh:
                if lines:
                    fh.write("\n".join(lines))
                    fh.write("\n")
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
