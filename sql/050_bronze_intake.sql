-- Everything that derives silver starts here: live trades straight from the parsers, or a seal replaying
-- a bronze hour. It has the parsers' columns because it carries the verbatim payload for the validation
-- DLQ, which bronze does not store: live rows bring it along, a seal replays '' and attaches it from
-- trades_raw afterwards (warm/seal.py).
CREATE TABLE IF NOT EXISTS k2.bronze_intake AS k2.trades_parsed ENGINE = Null
