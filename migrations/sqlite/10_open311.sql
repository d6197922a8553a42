-- Open311 GeoReport v2 and location on cases.

-- Where a territorial problem is (WGS 84 degrees); both or neither. `public_description`: the
-- resident chose to publish the description in the public GeoReport listing (off by default).
ALTER TABLE cases ADD COLUMN latitude DOUBLE PRECISION;
ALTER TABLE cases ADD COLUMN longitude DOUBLE PRECISION;
ALTER TABLE cases ADD COLUMN public_description BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX cases_topic_received ON cases (topic, received_at);

-- Which topics are GeoReport services, the case type a report on each files, and the Spanish
-- description apps show. Data, not code: an administrator adds or retires services here.
CREATE TABLE open311_services (
    service_code TEXT PRIMARY KEY,
    case_type TEXT NOT NULL REFERENCES case_types(id),
    description TEXT NOT NULL,
    keywords TEXT NOT NULL DEFAULT '',
    active BOOLEAN NOT NULL DEFAULT TRUE
);

INSERT INTO open311_services (service_code, case_type, description, keywords) VALUES
  ('alumbrado_publico', 'reclamo', 'Luminarias apagadas, intermitentes o encendidas de día, postes dañados.', 'luminaria,poste,luz'),
  ('calles_veredas', 'reclamo', 'Baches, pavimento o veredas en mal estado, tapas de cámaras sueltas.', 'bache,pavimento,vereda'),
  ('areas_verdes', 'solicitud', 'Árboles caídos o con riesgo de caer, poda, plazas y áreas verdes descuidadas.', 'arbolado,poda,plaza'),
  ('aseo_retiro', 'reclamo', 'Basura sin retirar, microbasurales y escombros en la vía pública.', 'basura,microbasural,escombros'),
  ('transito_senaletica', 'reclamo', 'Semáforos apagados, señales caídas o demarcación borrada.', 'semaforo,señal,demarcacion'),
  ('medio_ambiente', 'reclamo', 'Ruidos molestos, malos olores, quemas y otros problemas ambientales en un lugar.', 'ruido,olor,quema');

-- Keys that apps file reports with. Only the key's SHA-256 is kept; the key is shown once.
CREATE TABLE open311_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at BIGINT
);
CREATE UNIQUE INDEX open311_keys_key_hash_key ON open311_keys (key_hash);
