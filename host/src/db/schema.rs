//! Migrations, applied in order; `PRAGMA user_version` records how many have run.
//! Never edit a released entry: append a new one.

pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE products (
    customer_id  INTEGER NOT NULL,
    id           INTEGER NOT NULL,
    title        TEXT NOT NULL,
    product_type TEXT,
    data         TEXT NOT NULL,
    last_synced  TEXT,
    PRIMARY KEY (customer_id, id)
);
CREATE INDEX ix_products_type ON products (product_type);

CREATE TABLE features (
    customer_id  INTEGER NOT NULL,
    id           INTEGER NOT NULL,
    product_id   INTEGER NOT NULL,
    title        TEXT NOT NULL,
    description  TEXT,
    howtofind    TEXT,
    user_stories TEXT NOT NULL DEFAULT '[]',
    section_ids  TEXT NOT NULL DEFAULT '[]',
    raw_data     TEXT NOT NULL,
    last_synced  TEXT NOT NULL,
    PRIMARY KEY (customer_id, id)
);
CREATE INDEX ix_features_product ON features (customer_id, product_id);

CREATE TABLE tests (
    customer_id          INTEGER NOT NULL,
    id                   INTEGER NOT NULL,
    product_id           INTEGER NOT NULL,
    data                 TEXT NOT NULL,
    status               TEXT NOT NULL,
    start_at             TEXT,
    end_at               TEXT,
    synced_at            TEXT,
    bugs_synced_at       TEXT,
    created_by           TEXT,
    submitted_by         TEXT,
    created_by_user_id   INTEGER,
    submitted_by_user_id INTEGER,
    title                TEXT,
    testing_type         TEXT,
    goal                 TEXT,
    instructions         TEXT,
    out_of_scope         TEXT,
    enable_low           INTEGER,
    enable_high          INTEGER,
    enable_critical      INTEGER,
    test_environment     TEXT,
    PRIMARY KEY (customer_id, id)
);
CREATE INDEX ix_tests_product_end ON tests (customer_id, product_id, end_at);
CREATE INDEX ix_tests_status ON tests (status);
CREATE INDEX ix_tests_end_at ON tests (end_at);

CREATE TABLE test_features (
    customer_id    INTEGER NOT NULL,
    id             INTEGER NOT NULL,
    test_id        INTEGER NOT NULL,
    feature_id     INTEGER NOT NULL,
    title          TEXT NOT NULL,
    description    TEXT,
    howtofind      TEXT,
    user_stories   TEXT NOT NULL DEFAULT '[]',
    enable_default INTEGER NOT NULL DEFAULT 0,
    enable_content INTEGER NOT NULL DEFAULT 0,
    enable_visual  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (customer_id, id)
);
CREATE INDEX ix_test_features_test ON test_features (customer_id, test_id);
CREATE INDEX ix_test_features_feature ON test_features (customer_id, feature_id);

CREATE TABLE test_platforms (
    id                    INTEGER PRIMARY KEY,
    customer_id           INTEGER NOT NULL,
    test_id               INTEGER NOT NULL,
    operating_system_id   INTEGER,
    operating_system_name TEXT NOT NULL,
    category              TEXT,
    UNIQUE (customer_id, test_id, operating_system_id)
);
CREATE INDEX ix_test_platforms_os ON test_platforms (operating_system_name);

CREATE TABLE sync_events (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id        INTEGER NOT NULL,
    event_type         TEXT NOT NULL DEFAULT 'sync',
    started_at         TEXT NOT NULL,
    completed_at       TEXT,
    status             TEXT NOT NULL,
    trigger_source     TEXT NOT NULL,
    phases             TEXT NOT NULL,
    products_synced    INTEGER,
    features_refreshed INTEGER,
    tests_discovered   INTEGER,
    tests_updated      INTEGER,
    bugs_refreshed     INTEGER,
    warnings           INTEGER,
    errors             INTEGER,
    duration_seconds   REAL,
    error_message      TEXT
);
CREATE INDEX ix_sync_events_started ON sync_events (customer_id, started_at);

CREATE TABLE sync_metadata (
    customer_id INTEGER NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (customer_id, key)
);
"#,
    // 2: the sync log records who ran a sync and when it last made progress, so that a
    // sync whose process died can be closed as `interrupted` with a meaningful duration;
    // tests_coverage records how far each product's last uninterrupted walk of its tests
    // reached (no row: nowhere; since_ms NULL: every test).
    r#"
CREATE TABLE tests_coverage (
    customer_id INTEGER NOT NULL,
    product_id  INTEGER NOT NULL,
    since_ms    INTEGER,
    PRIMARY KEY (customer_id, product_id)
);
ALTER TABLE sync_events ADD COLUMN pid INTEGER;
ALTER TABLE sync_events ADD COLUMN heartbeat_at TEXT;
CREATE INDEX ix_sync_events_status ON sync_events (status);
"#,
    // 3: problem ranges, runs of test offsets that fail with HTTP 500 even one per page.
    r#"
CREATE TABLE problem_ranges (
    id             INTEGER PRIMARY KEY,
    customer_id    INTEGER NOT NULL,
    product_id     INTEGER NOT NULL,
    first_offset   INTEGER NOT NULL,
    last_offset    INTEGER NOT NULL,
    before_test_id INTEGER,
    before_end_at  TEXT,
    after_test_id  INTEGER,
    after_end_at   TEXT,
    attempts       INTEGER NOT NULL,
    first_seen     TEXT NOT NULL,
    last_seen      TEXT NOT NULL
);
CREATE INDEX ix_problem_ranges_product ON problem_ranges (customer_id, product_id);
"#,
    // 4: bugs, as the BUGS phase fetches them, scoped to the customer like every table.
    // `reported_by` is the author's name (there is no users table); `steps` is one text,
    // a line per step.
    r#"
CREATE TABLE bugs (
    customer_id     INTEGER NOT NULL,
    id              INTEGER NOT NULL,
    test_id         INTEGER NOT NULL,
    title           TEXT NOT NULL,
    severity        TEXT,
    status          TEXT,
    raw_data        TEXT NOT NULL,
    synced_at       TEXT NOT NULL,
    reported_by     TEXT,
    test_feature_id INTEGER,
    actual_result   TEXT,
    expected_result TEXT,
    steps           TEXT,
    reported_at     TEXT,
    known           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (customer_id, id)
);
CREATE INDEX ix_bugs_test ON bugs (customer_id, test_id);
CREATE INDEX ix_bugs_status ON bugs (status);
"#,
    // 5: what a sync re-checked for freshness and what it removed (a nuke's sweep, tests
    // the API no longer returns).
    r#"
ALTER TABLE sync_events ADD COLUMN tests_rechecked INTEGER;
ALTER TABLE sync_events ADD COLUMN tests_changed INTEGER;
ALTER TABLE sync_events ADD COLUMN rows_removed INTEGER;
"#,
    // 6: the customer registry (`customer add`). `customer_id` is the local id written to
    // every row of that customer; `token_key` is the suffix of its token variable, unique so
    // that two names never share one; product_ids is a JSON list (NULL: all); sync_since is
    // kept as typed; NULL interval: the global one. At most one default. Never a token.
    r#"
CREATE TABLE customers (
    id                       INTEGER PRIMARY KEY AUTOINCREMENT,
    name                     TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    token_key                TEXT NOT NULL UNIQUE,
    customer_id              INTEGER NOT NULL UNIQUE CHECK (customer_id > 0),
    base_url                 TEXT,
    product_ids              TEXT,
    sync_since               TEXT,
    refresh_interval_seconds INTEGER CHECK (refresh_interval_seconds >= 0),
    is_active                INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    is_default               INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    created_at               TEXT NOT NULL,
    updated_at               TEXT NOT NULL
);
CREATE UNIQUE INDEX ux_customers_one_default ON customers (is_default) WHERE is_default = 1;
"#,
    // 7: the freshness check reads every stored test's place, status and write time on each
    // sync; from the table, each read walks past the test's JSON (overflow pages, about 4 KB
    // a test). The same index as before, widened to cover that read.
    r#"
DROP INDEX ix_tests_product_end;
CREATE INDEX ix_tests_product_end ON tests (customer_id, product_id, end_at, id, status, synced_at);
"#,
];
