-- Several instances share one database: a change that every instance must act on (a catalog
-- reload) bumps its signal's generation, and each instance polls the generations and catches
-- up. `at` is when the signal was last bumped (milliseconds since the epoch).
CREATE TABLE service_signals (
    name TEXT PRIMARY KEY,
    generation BIGINT NOT NULL,
    at BIGINT NOT NULL
);
INSERT INTO service_signals (name, generation, at) VALUES ('catalog', 0, 0);
