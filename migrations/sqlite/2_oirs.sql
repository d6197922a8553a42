-- OIRS: parameters (case types, routing rules, holidays), cases, their events, the outbox,
-- the audit log and the counters that keep guessing and password trials slow.

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE case_types (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    deadline_days INTEGER NOT NULL CHECK (deadline_days > 0),
    alert_days INTEGER NOT NULL CHECK (alert_days >= 0),
    extension_days INTEGER NOT NULL DEFAULT 0 CHECK (extension_days >= 0),
    active BOOLEAN NOT NULL DEFAULT TRUE
);

INSERT INTO case_types (id, name, deadline_days, alert_days, extension_days) VALUES
  ('consulta', 'Consulta', 20, 5, 0),
  ('solicitud', 'Solicitud', 20, 5, 0),
  ('reclamo', 'Reclamo', 20, 5, 0),
  ('sugerencia', 'Sugerencia', 20, 5, 0),
  ('felicitacion', 'Felicitación', 20, 5, 0),
  ('transparencia', 'Solicitud de acceso a la información (Ley 20.285)', 20, 5, 10),
  ('datos_personales', 'Derechos sobre datos personales (Ley 21.719)', 20, 5, 0);

-- (case type, topic) → department; '*' matches any. The most specific rule wins.
CREATE TABLE routing_rules (
    case_type TEXT NOT NULL,
    topic TEXT NOT NULL,
    department_id TEXT NOT NULL REFERENCES departments(id),
    PRIMARY KEY (case_type, topic)
);

INSERT INTO routing_rules (case_type, topic, department_id) VALUES
  ('*', 'contacto_telefonos', 'relaciones_publicas'),
  ('*', 'contacto_correos', 'relaciones_publicas'),
  ('*', 'contacto_direcciones', 'relaciones_publicas'),
  ('*', 'horario_atencion', 'relaciones_publicas'),
  ('*', 'oficina_partes', 'oficina_partes'),
  ('*', 'contactar_me', 'oficina_partes'),
  ('*', 'pagos_online', 'daf'),
  ('*', 'permiso_circulacion', 'daf'),
  ('*', 'patentes_comerciales', 'daf'),
  ('*', 'derechos_aseo', 'daf'),
  ('*', 'licencia_conducir', 'transito'),
  ('*', 'partes_multas_jpl', 'juzgado_policia_local'),
  ('*', 'alcaldia', 'alcaldia'),
  ('*', 'concejo_municipal', 'concejo'),
  ('*', 'registro_social_hogares', 'dideco'),
  ('*', 'ayudas_sociales', 'dideco'),
  ('*', 'subsidio_agua_potable', 'dideco'),
  ('*', 'becas', 'dideco'),
  ('*', 'empleo_omil', 'dideco'),
  ('*', 'organizaciones_comunitarias', 'dideco'),
  ('*', 'vivienda', 'dideco'),
  ('*', 'adulto_mayor', 'dideco'),
  ('*', 'discapacidad', 'dideco'),
  ('*', 'permisos_edificacion', 'dom'),
  ('*', 'certificados_dom', 'dom'),
  ('*', 'aseo_retiro', 'aseo_ornato'),
  ('*', 'alumbrado_publico', 'aseo_ornato'),
  ('*', 'calles_veredas', 'secpla'),
  ('*', 'areas_verdes', 'aseo_ornato'),
  ('*', 'mascotas', 'medio_ambiente'),
  ('*', 'medio_ambiente', 'medio_ambiente'),
  ('*', 'transito_senaletica', 'transito'),
  ('*', 'seguridad_publica', 'seguridad_publica'),
  ('*', 'cementerio', 'cementerio'),
  ('*', 'salud', 'salud'),
  ('*', 'educacion', 'educacion'),
  ('*', 'cultura_deportes', 'dideco'),
  ('*', 'turismo', 'relaciones_publicas'),
  ('*', 'transparencia', 'transparencia'),
  ('*', 'datos_personales', 'transparencia'),
  ('*', 'reclamo', 'oirs'),
  ('*', 'sugerencia', 'oirs'),
  ('*', 'solicitud', 'oirs'),
  ('*', 'seguimiento', 'oirs'),
  ('transparencia', '*', 'transparencia'),
  ('datos_personales', '*', 'transparencia'),
  ('*', '*', 'oirs');

CREATE TABLE holidays (
    day TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT 'file'
);

CREATE TABLE folio_counters (
    year INTEGER PRIMARY KEY,
    last_seq BIGINT NOT NULL
);

CREATE TABLE cases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    folio TEXT NOT NULL,
    tracking_hash TEXT NOT NULL,
    case_type TEXT NOT NULL REFERENCES case_types(id),
    topic TEXT NOT NULL,
    department_id TEXT NOT NULL REFERENCES departments(id),
    status TEXT NOT NULL,
    channel TEXT NOT NULL,
    description TEXT NOT NULL,
    name TEXT NOT NULL,
    rut TEXT,
    email TEXT,
    phone TEXT,
    address TEXT,
    chat_session_id TEXT,
    received_at BIGINT NOT NULL,
    due_date TEXT NOT NULL,
    paused_since TEXT,
    extended BOOLEAN NOT NULL DEFAULT FALSE,
    alert_level TEXT NOT NULL DEFAULT 'none',
    answer TEXT,
    answered_at BIGINT,
    closed_at BIGINT,
    created_by BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX cases_folio_key ON cases (folio);
CREATE INDEX cases_department_status ON cases (department_id, status);
CREATE INDEX cases_rut ON cases (rut);

CREATE TABLE case_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id BIGINT NOT NULL REFERENCES cases(id),
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT,
    department_id TEXT,
    note TEXT,
    public BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX case_events_case ON case_events (case_id, id);

-- Replays of POST /api/v1/oirs/cases with the same Idempotency-Key get the first answer.
CREATE TABLE idempotency_keys (
    key TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Messages to deliver (webhooks to gestión documental, e-mails), committed with the change
-- that caused them and delivered by a background worker with retries.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    user_id BIGINT,
    username TEXT NOT NULL,
    action TEXT NOT NULL,
    folio TEXT,
    detail TEXT
);
CREATE INDEX audit_log_folio ON audit_log (folio);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE attempt_failures (
    scope TEXT NOT NULL,
    subject TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX attempt_failures_subject ON attempt_failures (scope, subject, at);
