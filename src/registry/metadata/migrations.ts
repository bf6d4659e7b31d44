/**
 * The metadata schema, as numbered migrations applied in order and recorded in `schema_migrations`. A migration
 * is never edited once released: a change is a new number. Each carries its SQL for both dialects; they differ
 * only where the engines do (identity columns, integer widths, and `COLLATE "C"` in PostgreSQL, which orders
 * names bytewise as SQLite's default BINARY collation does, so catalog pages agree across stores).
 *
 * A store refuses to open a database whose schema is newer than the migrations it knows (an older regctl on a
 * database a newer one upgraded).
 */
export interface Migration {
  version: number;
  name: string;
  sqlite: string;
  postgres: string;
}

const SCHEMA_1 = (d: { id: string; int: string; text: string; rowid: string }): string => `
CREATE TABLE repositories (
  id ${d.id},
  name ${d.text} NOT NULL UNIQUE,
  last_push ${d.int} NOT NULL DEFAULT 0,
  last_pull ${d.int} NOT NULL DEFAULT 0
);
CREATE TABLE tags (
  repository_id ${d.int} NOT NULL,
  name ${d.text} NOT NULL,
  digest TEXT NOT NULL,
  updated_at ${d.int} NOT NULL,
  PRIMARY KEY (repository_id, name)
)${d.rowid};
CREATE INDEX tags_digest ON tags (repository_id, digest);
CREATE TABLE manifests (
  repository_id ${d.int} NOT NULL,
  digest TEXT NOT NULL,
  media_type TEXT,
  size ${d.int},
  config_digest TEXT,
  subject_digest TEXT,
  artifact_type TEXT,
  pushed_at ${d.int} NOT NULL,
  PRIMARY KEY (repository_id, digest)
)${d.rowid};
CREATE INDEX manifests_subject ON manifests (repository_id, subject_digest) WHERE subject_digest IS NOT NULL;
CREATE TABLE manifest_references (
  repository_id ${d.int} NOT NULL,
  manifest_digest TEXT NOT NULL,
  digest TEXT NOT NULL,
  size ${d.int} NOT NULL,
  PRIMARY KEY (repository_id, manifest_digest, digest)
)${d.rowid};
CREATE TABLE uses (
  digest TEXT PRIMARY KEY,
  at ${d.int} NOT NULL
)${d.rowid};
CREATE TABLE intents (
  id ${d.id},
  kind TEXT NOT NULL,
  repository ${d.text} NOT NULL,
  key TEXT NOT NULL,
  created_at ${d.int} NOT NULL
);
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'repositories, tags, manifests and their references, uses, intents, meta',
    sqlite: SCHEMA_1({ id: 'INTEGER PRIMARY KEY', int: 'INTEGER', text: 'TEXT', rowid: ' WITHOUT ROWID' }),
    postgres: SCHEMA_1({
      id: 'BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY',
      int: 'BIGINT',
      text: 'TEXT COLLATE "C"',
      rowid: '',
    }),
  },
  {
    version: 2,
    name: 'the process that began each intent',
    sqlite: 'ALTER TABLE intents ADD COLUMN owner TEXT;',
    postgres: 'ALTER TABLE intents ADD COLUMN owner TEXT;',
  },
  {
    version: 3,
    name: 'the last pull of each manifest (retention keeps what was pulled recently)',
    sqlite: 'ALTER TABLE manifests ADD COLUMN pulled_at INTEGER NOT NULL DEFAULT 0;',
    postgres: 'ALTER TABLE manifests ADD COLUMN pulled_at BIGINT NOT NULL DEFAULT 0;',
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

export const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at BIGINT NOT NULL
)`;

export class SchemaTooNewError extends Error {
  constructor(found: number) {
    super(
      `the metadata database has schema version ${found}, newer than this regctl knows (${SCHEMA_VERSION}): ` +
        'run the newer regctl, or rebuild the metadata with regctl fsck --rebuild-metadata',
    );
    this.name = 'SchemaTooNewError';
  }
}
