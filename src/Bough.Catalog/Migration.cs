namespace Bough.Catalog;

/// <summary>
/// One schema step. Versions are applied in ascending order, each in its own transaction
/// together with its <c>schema_migrations</c> row, so a failure leaves the previous version intact.
/// </summary>
/// <param name="Version">Strictly increasing, starting at 1. Never renumber a shipped migration.</param>
/// <param name="Name">Short human label, stored for diagnostics.</param>
/// <param name="Sql">One or more SQL statements. No BEGIN/COMMIT: the runner owns the transaction.</param>
public sealed record Migration(int Version, string Name, string Sql);

/// <summary>
/// The catalog schema history. To change the schema, append a new <see cref="Migration"/>
/// (e.g. version 2 "snapshots", version 3 "images"); never edit a shipped one.
/// </summary>
public static class CatalogMigrations
{
    public static IReadOnlyList<Migration> All { get; } =
    [
        new(1, "sandboxes", """
            CREATE TABLE sandboxes (
                id            TEXT    NOT NULL PRIMARY KEY,
                state         TEXT    NOT NULL,
                state_reason  TEXT,
                image         TEXT    NOT NULL,
                vcpus         INTEGER NOT NULL,
                memory_mib    INTEGER NOT NULL,
                created_at    TEXT    NOT NULL,  -- ISO 8601 UTC, sortable as text
                updated_at    TEXT    NOT NULL,
                metadata_json TEXT    NOT NULL DEFAULT '{}',
                env_json      TEXT    NOT NULL DEFAULT '{}',
                ports_json    TEXT    NOT NULL DEFAULT '[]',
                internet      INTEGER NOT NULL,
                accel         TEXT    NOT NULL,
                pid           INTEGER,
                runtime_dir   TEXT    NOT NULL
            );
            CREATE INDEX ix_sandboxes_state ON sandboxes(state);
            """),
        new(2, "snapshots", """
            CREATE TABLE snapshots (
                id                TEXT    NOT NULL PRIMARY KEY,
                tag               TEXT    UNIQUE,
                parent_id         TEXT    REFERENCES snapshots(id),
                source_sandbox_id TEXT,
                depth             INTEGER NOT NULL,
                kind              TEXT    NOT NULL,
                image             TEXT    NOT NULL,
                vcpus             INTEGER NOT NULL,
                memory_mib        INTEGER NOT NULL,
                memory_bytes      INTEGER NOT NULL,
                disk_bytes        INTEGER NOT NULL,
                pause_ms          INTEGER,
                dir               TEXT    NOT NULL,
                created_at        TEXT    NOT NULL
            );
            CREATE INDEX ix_snapshots_parent ON snapshots(parent_id);
            -- The snapshot a sandbox was started from (or paused into), and the files its
            -- running VM uses now: both change when the sandbox is captured or resumed.
            ALTER TABLE sandboxes ADD COLUMN snapshot_id TEXT;
            ALTER TABLE sandboxes ADD COLUMN memory_file TEXT;
            ALTER TABLE sandboxes ADD COLUMN disk_path TEXT;
            """),
    ];
}
