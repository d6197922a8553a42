-- Instants are stored as milliseconds since the Unix epoch (UTC) on both backends.
CREATE TABLE departments (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL DEFAULT '',
    active BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'coordinator', 'department', 'analyst')),
    department_id TEXT REFERENCES departments(id),
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL,
    CONSTRAINT users_department_role CHECK (role <> 'department' OR department_id IS NOT NULL)
);
CREATE UNIQUE INDEX users_username_key ON users (username);

-- Opaque staff session tokens; only their SHA-256 digest is stored.
CREATE TABLE staff_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE chat_sessions (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    state TEXT NOT NULL
);
CREATE INDEX chat_sessions_updated ON chat_sessions (updated_at);

-- One row per chat interaction. Local calendar fields are computed at ingest in the
-- municipality's time zone so every grouping is a plain GROUP BY on both backends.
CREATE TABLE interactions (
    id BIGSERIAL PRIMARY KEY,
    occurred_at BIGINT NOT NULL,
    local_month TEXT NOT NULL,
    local_date TEXT NOT NULL,
    weekday SMALLINT NOT NULL,
    hour SMALLINT NOT NULL,
    session_id TEXT,
    kind TEXT NOT NULL,
    button_id TEXT,
    parent_id TEXT,
    intent TEXT,
    topic TEXT,
    confidence DOUBLE PRECISION,
    fallback BOOLEAN NOT NULL DEFAULT FALSE,
    text_masked TEXT
);
CREATE INDEX interactions_occurred ON interactions (occurred_at);
CREATE INDEX interactions_local_date ON interactions (local_date);
INSERT INTO departments (id, name, email) VALUES
  ('dideco', 'Dirección de Desarrollo Comunitario (DIDECO)', 'dideco@example.cl'),
  ('dom', 'Dirección de Obras Municipales (DOM)', 'dom@example.cl'),
  ('daf', 'Dirección de Administración y Finanzas (DAF)', 'daf@example.cl'),
  ('transito', 'Dirección de Tránsito', 'transito@example.cl'),
  ('secpla', 'Secretaría Comunal de Planificación (SECPLA)', 'secpla@example.cl'),
  ('juzgado_policia_local', 'Juzgado de Policía Local', 'jpl@example.cl'),
  ('oficina_partes', 'Oficina de Partes', 'partes@example.cl'),
  ('alcaldia', 'Alcaldía', 'alcaldia@example.cl'),
  ('concejo', 'Concejo Municipal', 'concejo@example.cl'),
  ('relaciones_publicas', 'Relaciones Públicas', 'rrpp@example.cl'),
  ('aseo_ornato', 'Dirección de Aseo y Ornato', 'aseo@example.cl'),
  ('medio_ambiente', 'Departamento de Medio Ambiente', 'medioambiente@example.cl'),
  ('seguridad_publica', 'Dirección de Seguridad Pública', 'seguridad@example.cl'),
  ('salud', 'Departamento de Salud Municipal', 'salud@example.cl'),
  ('educacion', 'Departamento de Educación Municipal', 'educacion@example.cl'),
  ('cementerio', 'Cementerio Municipal', 'cementerio@example.cl'),
  ('transparencia', 'Unidad de Transparencia', 'transparencia@example.cl'),
  ('oirs', 'Oficina de Informaciones, Reclamos y Sugerencias (OIRS)', 'oirs@example.cl');
