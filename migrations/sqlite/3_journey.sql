-- A case closed because it repeats another names that other case's folio.
ALTER TABLE cases ADD COLUMN duplicate_of TEXT;
