-- Everything that derives gold starts here: live silver inserts, or a seal replaying a silver hour.
CREATE TABLE IF NOT EXISTS k2.silver_intake AS k2.silver_trades ENGINE = Null
