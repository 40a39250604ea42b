-- Everything that derives bronze and silver starts here: parsed trades (live, or a bronze seal replaying raw
-- hours through the parsers), or a silver seal replaying a bronze hour. It has the parsers' columns because
-- it carries the verbatim payload for the validation DLQ, which bronze does not store: parsed rows bring it
-- along, a silver seal replays '' and attaches it from trades_raw afterwards (warm/seal.py).
CREATE TABLE IF NOT EXISTS k2.bronze_intake AS k2.trades_parsed ENGINE = Null
