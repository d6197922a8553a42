-- Satisfaction surveys: at most one per closed case (the primary key keeps it once). The
-- department is the one that answered; the comment is the resident's own words (personal
-- data): staff read it on the case page, analytics never do, anonymisation erases it.
CREATE TABLE case_satisfaction (
    case_id BIGINT PRIMARY KEY REFERENCES cases(id),
    department_id TEXT NOT NULL,
    score INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment TEXT,
    at BIGINT NOT NULL,
    local_month TEXT NOT NULL,
    local_date TEXT NOT NULL
);
CREATE INDEX case_satisfaction_local_date ON case_satisfaction (local_date);

-- "¿Te sirvió?" under the chat's answers: one row per answered turn (the latest click wins).
-- The turn's instant joins it to its interaction (masked question, same retention); no text
-- is copied here.
CREATE TABLE answer_feedback (
    session_id TEXT NOT NULL,
    turn_id TEXT NOT NULL,
    turn_at BIGINT NOT NULL,
    intent TEXT NOT NULL,
    useful BOOLEAN NOT NULL,
    at BIGINT NOT NULL,
    local_month TEXT NOT NULL,
    local_date TEXT NOT NULL,
    PRIMARY KEY (session_id, turn_id)
);
CREATE INDEX answer_feedback_local_date ON answer_feedback (local_date);
