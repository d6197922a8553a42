-- Ley 21.719: each case type counts its term on its own clock (días hábiles per Ley 19.880
-- art. 25, or días corridos), each case keeps the clock it was filed under, data-rights
-- requests say which right, people can be blocked, and anonymised cases say when.
ALTER TABLE case_types ADD COLUMN clock TEXT NOT NULL DEFAULT 'habiles'
    CHECK (clock IN ('habiles', 'corridos'));
UPDATE case_types SET clock = 'corridos', deadline_days = 30, extension_days = 30
    WHERE id = 'datos_personales';

ALTER TABLE cases ADD COLUMN clock TEXT NOT NULL DEFAULT 'habiles';
ALTER TABLE cases ADD COLUMN data_right TEXT;
ALTER TABLE cases ADD COLUMN anonymized_at BIGINT;
CREATE INDEX cases_closed ON cases (closed_at);

-- Outbox messages name the case they belong to, so a person's messages can be found.
ALTER TABLE outbox ADD COLUMN folio TEXT;
CREATE INDEX outbox_folio ON outbox (folio);

-- People (by normalised RUT) whose data must not leave the service while the flag stands.
CREATE TABLE data_subject_blocks (
    rut TEXT PRIMARY KEY,
    since BIGINT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);
