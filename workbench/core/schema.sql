-- Workbench project database, schema version 1.
-- `ai_decisions` follows seed 002 to the column; everything else is a side table.

CREATE TABLE ai_decisions (
    group_id            TEXT PRIMARY KEY,
    timestamp           TEXT NOT NULL,
    project_id          TEXT NOT NULL,
    directory           TEXT,
    batch_number        INTEGER,
    images              TEXT NOT NULL,
    ai_selected_index   INTEGER,
    ai_crop_coords      TEXT,
    ai_confidence       REAL,
    user_selected_index INTEGER NOT NULL,
    user_action         TEXT NOT NULL,
    ai_crop_accepted    BOOLEAN,
    final_crop_coords   TEXT,
    crop_timestamp      TEXT,
    image_width         INTEGER NOT NULL,
    image_height        INTEGER NOT NULL,
    selection_match     BOOLEAN,
    crop_match          BOOLEAN,
    CHECK(user_action IN ('approve', 'crop', 'reject')),
    CHECK(ai_selected_index >= 0 AND ai_selected_index <= 3),
    CHECK(user_selected_index >= 0 AND user_selected_index <= 3),
    CHECK(ai_confidence IS NULL OR (ai_confidence >= 0.0 AND ai_confidence <= 1.0)),
    CHECK(image_width > 0 AND image_height > 0)
);

CREATE INDEX idx_project_id ON ai_decisions(project_id);
CREATE INDEX idx_timestamp ON ai_decisions(timestamp);
CREATE INDEX idx_selection_match ON ai_decisions(selection_match);
CREATE INDEX idx_crop_match ON ai_decisions(crop_match);
CREATE INDEX idx_user_action ON ai_decisions(user_action);
CREATE INDEX idx_batch_number ON ai_decisions(batch_number);

CREATE VIEW ai_performance AS
SELECT
    project_id,
    COUNT(*) AS decisions,
    SUM(CASE WHEN selection_match = 1 THEN 1 ELSE 0 END) AS selection_correct,
    CAST(SUM(CASE WHEN selection_match = 1 THEN 1 ELSE 0 END) AS REAL)
        / NULLIF(SUM(CASE WHEN selection_match IS NOT NULL THEN 1 ELSE 0 END), 0)
        AS selection_accuracy,
    SUM(CASE WHEN ai_crop_coords IS NOT NULL AND final_crop_coords IS NOT NULL
             THEN 1 ELSE 0 END) AS decisions_with_both_crops,
    SUM(CASE WHEN crop_match = 1 THEN 1 ELSE 0 END) AS crop_correct,
    CAST(SUM(CASE WHEN crop_match = 1 THEN 1 ELSE 0 END) AS REAL)
        / NULLIF(SUM(CASE WHEN ai_crop_coords IS NOT NULL AND final_crop_coords IS NOT NULL
                          THEN 1 ELSE 0 END), 0)
        AS crop_accuracy
FROM ai_decisions
GROUP BY project_id;

CREATE VIEW incomplete_crops AS
SELECT * FROM ai_decisions
WHERE user_action = 'crop' AND final_crop_coords IS NULL;

CREATE VIEW ai_mistakes AS
SELECT * FROM ai_decisions
WHERE selection_match = 0 OR crop_match = 0;

-- Side tables ---------------------------------------------------------------

-- Key/value facts about the project (resume position, frozen split seed, ...).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Groups found by scanning the source folder, before and after a decision.
CREATE TABLE groups (
    id           INTEGER PRIMARY KEY,
    batch_number INTEGER NOT NULL CHECK(batch_number >= 1),
    position     INTEGER NOT NULL CHECK(position >= 0),
    reason       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    group_id     TEXT UNIQUE REFERENCES ai_decisions(group_id) ON DELETE SET NULL,
    UNIQUE(batch_number, position)
);

CREATE TABLE group_images (
    group_pk   INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    position   INTEGER NOT NULL CHECK(position >= 0 AND position <= 3),
    path       TEXT NOT NULL,
    width      INTEGER CHECK(width IS NULL OR width > 0),
    height     INTEGER CHECK(height IS NULL OR height > 0),
    size_bytes INTEGER NOT NULL CHECK(size_bytes >= 0),
    mtime_ns   INTEGER NOT NULL,
    PRIMARY KEY (group_pk, position)
);
CREATE UNIQUE INDEX idx_group_images_path ON group_images(path);

-- Files the scan could not use, with the reason (shown, never silently dropped).
CREATE TABLE scan_skipped (
    path       TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    scanned_at TEXT NOT NULL
);

-- A choice made in the reviewer, committed at once; becomes an ai_decisions row at finalize.
CREATE TABLE staged_choices (
    group_pk            INTEGER PRIMARY KEY REFERENCES groups(id) ON DELETE CASCADE,
    user_action         TEXT NOT NULL CHECK(user_action IN ('approve', 'crop', 'reject')),
    user_selected_index INTEGER NOT NULL CHECK(user_selected_index >= 0 AND user_selected_index <= 3),
    crop_overlay_on     BOOLEAN NOT NULL DEFAULT 1,
    ai_selected_index   INTEGER CHECK(ai_selected_index IS NULL OR (ai_selected_index >= 0 AND ai_selected_index <= 3)),
    ai_crop_coords      TEXT,
    ai_confidence       REAL CHECK(ai_confidence IS NULL OR (ai_confidence >= 0.0 AND ai_confidence <= 1.0)),
    ranker_version      TEXT,
    crop_version        TEXT,
    staged_at           TEXT NOT NULL
);

-- What ai_decisions has no column for, keyed by group_id.
CREATE TABLE decision_extras (
    group_id        TEXT PRIMARY KEY REFERENCES ai_decisions(group_id) ON DELETE CASCADE,
    final_crop_iou  REAL CHECK(final_crop_iou IS NULL OR (final_crop_iou >= 0.0 AND final_crop_iou <= 1.0)),
    ranker_version  TEXT,
    crop_version    TEXT,
    source          TEXT NOT NULL DEFAULT 'reviewer' CHECK(source IN ('reviewer', 'import'))
);

-- Where each image of a decided group lives now.
CREATE TABLE decision_files (
    group_id      TEXT NOT NULL REFERENCES ai_decisions(group_id) ON DELETE CASCADE,
    image_index   INTEGER NOT NULL CHECK(image_index >= 0 AND image_index <= 3),
    original_path TEXT NOT NULL,
    current_path  TEXT NOT NULL,
    PRIMARY KEY (group_id, image_index)
);
CREATE INDEX idx_decision_files_current ON decision_files(current_path);

-- File-move journal: an operation is one undoable user action made of ordered moves.
CREATE TABLE file_operations (
    id         INTEGER PRIMARY KEY,
    label      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    state      TEXT NOT NULL CHECK(state IN ('open', 'done', 'undone')),
    payload    TEXT,
    undone_at  TEXT,
    undo_of    INTEGER REFERENCES file_operations(id)
);

CREATE TABLE file_moves (
    id           INTEGER PRIMARY KEY,
    operation_id INTEGER NOT NULL REFERENCES file_operations(id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    src          TEXT NOT NULL,
    dst          TEXT NOT NULL,
    size_bytes   INTEGER,
    state        TEXT NOT NULL CHECK(state IN ('intent', 'moved', 'done', 'rolled_back')),
    updated_at   TEXT NOT NULL,
    UNIQUE(operation_id, seq)
);
CREATE INDEX idx_file_moves_state ON file_moves(state);

-- Plate labels (seed 004); '__SKIP__' marks a skipped crop.
CREATE TABLE plate_labels (
    image_path          TEXT PRIMARY KEY,
    text                TEXT NOT NULL,
    source              TEXT NOT NULL CHECK(source IN ('typed', 'prelabel', 'corrected', 'imported')),
    labeled_at          TEXT NOT NULL,
    prelabel_text       TEXT,
    prelabel_confidence REAL,
    prelabel_engine     TEXT
);

-- Trained model versions known to this project (files live under models/).
CREATE TABLE model_versions (
    kind        TEXT NOT NULL,
    version     INTEGER NOT NULL CHECK(version >= 1),
    created_at  TEXT NOT NULL,
    path        TEXT NOT NULL,
    data_hash   TEXT,
    metrics     TEXT,
    is_champion BOOLEAN NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, version)
);

-- Per-image feature cache for the ranker, keyed by file content identity.
CREATE TABLE image_features (
    content_key     TEXT NOT NULL,
    feature_version TEXT NOT NULL,
    features        BLOB NOT NULL,
    computed_at     TEXT NOT NULL,
    PRIMARY KEY (content_key, feature_version)
);
