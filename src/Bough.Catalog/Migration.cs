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
        new(3, "images-templates", """
            -- OCI/recipe images published under images/oci/<id>/. The row is written last (after
            -- the directory is in place); previous_ids lists older published ids of the same name
            -- that overlays may still be layered on, deleted together with the image.
            CREATE TABLE images (
                name              TEXT    NOT NULL PRIMARY KEY,
                id                TEXT    NOT NULL UNIQUE,
                source            TEXT    NOT NULL,
                digest            TEXT,
                disk_path         TEXT    NOT NULL,
                dir               TEXT    NOT NULL,
                config_json       TEXT    NOT NULL DEFAULT '{}',
                content_bytes     INTEGER NOT NULL,
                disk_bytes        INTEGER NOT NULL,
                created_at        TEXT    NOT NULL,
                previous_ids_json TEXT    NOT NULL DEFAULT '[]'
            );
            -- A template is a snapshot of a sandbox whose start command is up and ready.
            CREATE TABLE templates (
                name        TEXT    NOT NULL PRIMARY KEY,
                image       TEXT    NOT NULL,
                snapshot_id TEXT    NOT NULL REFERENCES snapshots(id),
                vcpus       INTEGER NOT NULL,
                memory_mib  INTEGER NOT NULL,
                start_json  TEXT,
                ready_json  TEXT,
                env_json    TEXT    NOT NULL DEFAULT '{}',
                ports_json  TEXT    NOT NULL DEFAULT '[]',
                internet    INTEGER NOT NULL,
                warmup_ms   INTEGER NOT NULL,
                created_at  TEXT    NOT NULL
            );
            -- The template a sandbox was created from (null otherwise).
            ALTER TABLE sandboxes ADD COLUMN template TEXT;
            """),
        new(4, "snapshot-keep", """
            -- 0 for a branch snapshot nobody tagged or asked to keep: collected with its last
            -- user. Existing rows predate the rule and are kept.
            ALTER TABLE snapshots ADD COLUMN keep INTEGER NOT NULL DEFAULT 1;
            """),
        new(5, "containment", """
            -- The unprivileged uid the sandbox's QEMU runs as (null: none running), its deadline
            -- and what happens then, and its egress policy beyond 'internet'.
            ALTER TABLE sandboxes ADD COLUMN vm_uid INTEGER;
            ALTER TABLE sandboxes ADD COLUMN end_at TEXT;
            ALTER TABLE sandboxes ADD COLUMN on_timeout TEXT;
            ALTER TABLE sandboxes ADD COLUMN network_json TEXT;
            """),
        new(6, "boot-snapshots", """
            -- The shape key of a boot snapshot (image version, kernel, agent, vCPUs, memory): creates
            -- of that shape restore from it. At most one snapshot per key; null for every other kind.
            ALTER TABLE snapshots ADD COLUMN boot_key TEXT;
            CREATE UNIQUE INDEX ux_snapshots_boot_key ON snapshots(boot_key) WHERE boot_key IS NOT NULL;
            -- How the sandbox started: 'cold' (booted its image) or 'restored' (from a snapshot).
            -- Null in rows made before this column: derived from snapshot_id when read.
            ALTER TABLE sandboxes ADD COLUMN boot TEXT;
            """),
    ];
}
