-- inflow schema.
--
-- PostgreSQL's image runs the files in /docker-entrypoint-initdb.d/ only when it starts on an
-- EMPTY data directory: editing this file changes nothing on an existing volume. Later schema
-- changes belong in dated migrations; this file stays idempotent so running it twice is harmless.

CREATE TABLE IF NOT EXISTS entries (
  -- Made by the API (UUID v7) and used as the BullMQ job id: a redelivered job hits this key
  -- and ON CONFLICT DO NOTHING turns at-least-once delivery into exactly-once rows.
  id           uuid        PRIMARY KEY,
  author       text        NOT NULL,
  message      text        NOT NULL,
  accepted_by  text        NOT NULL,
  persisted_by text        NOT NULL,
  -- When the API accepted the entry; persisted_at - created_at is the time spent queued.
  created_at   timestamptz NOT NULL,
  persisted_at timestamptz NOT NULL DEFAULT clock_timestamp(),

  -- The same limits as shared/src/entry.ts (ENTRY_LIMITS), counted in characters.
  CONSTRAINT entries_author_length  CHECK (char_length(author) BETWEEN 1 AND 80),
  CONSTRAINT entries_message_length CHECK (char_length(message) BETWEEN 1 AND 2000),
  CONSTRAINT entries_author_no_control  CHECK (author !~ '[\x01-\x1f\x7f-\x9f]'),
  CONSTRAINT entries_message_no_control CHECK (message !~ '[\x01-\x09\x0b-\x1f\x7f-\x9f]'),
  CONSTRAINT entries_instance_ids CHECK (
    char_length(accepted_by) BETWEEN 1 AND 64 AND char_length(persisted_by) BETWEEN 1 AND 64
  )
);

-- Newest-first keyset paging: ORDER BY created_at DESC, id DESC with WHERE (created_at, id) < cursor.
CREATE INDEX IF NOT EXISTS entries_newest_first ON entries (created_at DESC, id DESC);
