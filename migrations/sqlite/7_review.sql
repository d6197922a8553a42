-- Catalog review (issue #16). Each chat message records what the assistant did with it
-- (answer, clarify, fallback) and its best guess even when it did not answer, so the review
-- can list what residents asked that the assistant did not know.
ALTER TABLE interactions ADD COLUMN decision TEXT;
ALTER TABLE interactions ADD COLUMN best_intent TEXT;
CREATE INDEX interactions_review ON interactions (kind, local_date);

-- The overlay of the catalog files: examples taught from the console (intent NULL = out of
-- scope), matched by their normalised text, one teaching per text.
CREATE TABLE catalog_examples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    intent TEXT,
    text TEXT NOT NULL,
    normalized TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX catalog_examples_normalized_key ON catalog_examples (normalized);

-- New intents written in the console (answer with the profile's {{placeholders}} unfilled,
-- buttons a JSON array of botonera ids).
CREATE TABLE catalog_intents (
    id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    title TEXT NOT NULL,
    answer TEXT NOT NULL,
    buttons TEXT NOT NULL DEFAULT '[]',
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
