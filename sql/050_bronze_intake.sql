-- Everything that derives silver starts here: live bronze inserts, or a seal replaying a bronze hour.
CREATE TABLE IF NOT EXISTS k2.bronze_intake AS k2.bronze_trades ENGINE = Null
