-- Staff actions on a case are compare-and-set on its version: two actions saved at the same
-- moment either both take effect (the second is re-planned on the first's result) or one is
-- refused, never one silently undoing the other.
ALTER TABLE cases ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

-- Idempotency records now keep the key's digest and the tracking code sealed with the key
-- itself, so a copy of the database does not reveal codes. Older records kept both in
-- clear: they are dropped (a replay after this upgrade files nothing twice only within the
-- record's lifetime anyway).
DELETE FROM idempotency_keys;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Failed attempts are now counted per client and target (digests), not per target alone.
DELETE FROM attempt_failures;

-- Acknowledgement e-mails no longer carry the tracking code. Those given up on (dead or
-- skipped) kept it in their bodies: they are scrubbed. Pending ones go out and are scrubbed on
-- delivery, as every sent e-mail is.
UPDATE outbox SET payload = '{"scrubbed":true}'
    WHERE kind = 'email' AND status IN ('dead', 'skipped') AND payload LIKE '%digo de seguimiento es%';
-- Delivery errors may quote addresses: those are now masked; older ones are dropped.
UPDATE outbox SET last_error = NULL WHERE kind = 'email';
