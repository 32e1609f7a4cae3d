import GRDB

/// The broker's schema, as named migrations applied at open.
enum Schema {
    /// The newest migration this build knows. The PostgreSQL store's migrations carry the same names, so
    /// the two stores' schemas are versioned together (a test keeps them in step).
    static var latest: String { migrator.migrations.last ?? "" }
    /// A database a newer hive migrated is refused, not run: this binary would ignore tables and columns it
    /// does not know (budgets not enforced, an index not kept in step). GRDB's migrator skips unknown
    /// migrations silently, hence the check. A rollback to an older binary restores the pre-upgrade backup.
    static func refuseNewer(_ pool: DatabasePool, path: String) throws {
        let known = Set(migrator.migrations)
        let applied = try pool.read { db in try migrator.appliedIdentifiers(db) }
        let unknown = applied.subtracting(known).sorted()
        guard unknown.isEmpty else {
            throw BrokerError.storage("""
                \(path) was migrated by a newer hive (\(unknown.joined(separator: ", "))): run that hive, or restore the backup \
                taken before the upgrade (docs/operations.md, Rollback)
                """)
        }
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1-agents-and-messages") { db in
            try db.execute(sql: """
                CREATE TABLE agent (
                    name TEXT PRIMARY KEY NOT NULL,
                    created_at REAL NOT NULL,
                    destroyed_at REAL
                );
                -- AUTOINCREMENT: ids are never reused after a sweep, so an old in_reply_to can never
                -- point at a newer, unrelated message.
                CREATE TABLE message (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    sender TEXT NOT NULL,
                    recipient TEXT NOT NULL,
                    body TEXT NOT NULL,
                    sent_at REAL NOT NULL,
                    delivered_at REAL,
                    acked_at REAL,
                    in_reply_to INTEGER,
                    broadcast INTEGER NOT NULL DEFAULT 0,
                    redelivered INTEGER NOT NULL DEFAULT 0
                );
                CREATE INDEX message_pending ON message(recipient, id) WHERE delivered_at IS NULL AND acked_at IS NULL;
                CREATE INDEX message_inflight ON message(recipient) WHERE delivered_at IS NOT NULL AND acked_at IS NULL;
                CREATE INDEX message_acked ON message(acked_at) WHERE acked_at IS NOT NULL;
                CREATE INDEX message_sender ON message(sender, id);
                CREATE INDEX message_recipient ON message(recipient, id);
                """)
        }
        m.registerMigration("v2-dead-letters") { db in
            try db.execute(sql: """
                ALTER TABLE message ADD COLUMN dead_at REAL;
                ALTER TABLE message ADD COLUMN dead_reason TEXT;
                DROP INDEX message_pending;
                DROP INDEX message_inflight;
                CREATE INDEX message_pending ON message(recipient, id) WHERE delivered_at IS NULL AND acked_at IS NULL AND dead_at IS NULL;
                CREATE INDEX message_inflight ON message(recipient) WHERE delivered_at IS NOT NULL AND acked_at IS NULL AND dead_at IS NULL;
                CREATE INDEX message_dead ON message(dead_at) WHERE dead_at IS NOT NULL;
                """)
        }
        m.registerMigration("v3-reminders") { db in
            try db.execute(sql: """
                CREATE TABLE reminder (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    agent TEXT NOT NULL,
                    body TEXT NOT NULL,
                    file_path TEXT,
                    created_at REAL NOT NULL,
                    due_at REAL NOT NULL,
                    -- pending | delivered | cancelled | failed
                    state TEXT NOT NULL DEFAULT 'pending',
                    finished_at REAL,
                    message_id INTEGER,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    last_error TEXT
                );
                CREATE INDEX reminder_due ON reminder(due_at) WHERE state = 'pending';
                CREATE INDEX reminder_agent ON reminder(agent, state);
                CREATE INDEX reminder_finished ON reminder(finished_at) WHERE finished_at IS NOT NULL;
                -- Every delivery attempt, for the rollup an agent's stats page shows.
                CREATE TABLE reminder_attempt (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    reminder_id INTEGER NOT NULL,
                    agent TEXT NOT NULL,
                    at REAL NOT NULL,
                    ok INTEGER NOT NULL,
                    error TEXT
                );
                CREATE INDEX reminder_attempt_agent ON reminder_attempt(agent, at);
                """)
        }
        m.registerMigration("v4-reminder-agent-due") { db in
            // Lets the scheduler take each agent's oldest due reminders without sorting all of them.
            try db.execute(sql: "CREATE INDEX reminder_agent_due ON reminder(agent, due_at, id) WHERE state = 'pending'")
        }
        m.registerMigration("v5-agent-uid") { db in
            // The unprivileged uid an agent's cage runs as (allocated on first use, never reused).
            try db.execute(sql: "ALTER TABLE agent ADD COLUMN uid INTEGER")
            try db.execute(sql: "CREATE TABLE hive_setting (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL)")
        }
        m.registerMigration("v6-agent-stopped") { db in
            // Stopped by the operator: core does not start it at boot until it is started again.
            try db.execute(sql: "ALTER TABLE agent ADD COLUMN stopped INTEGER NOT NULL DEFAULT 0")
        }
        m.registerMigration("v7-approvals") { db in
            // Requests for the operator's approval: seeding an agent's config repo, deploying a commit of it.
            try db.execute(sql: """
                CREATE TABLE approval (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    kind TEXT NOT NULL,
                    agent TEXT NOT NULL,
                    commit_sha TEXT,
                    description TEXT,
                    diff TEXT,
                    state TEXT NOT NULL,
                    note TEXT,
                    requested_by TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    resolved_at REAL
                );
                CREATE INDEX approval_open ON approval(state) WHERE state IN ('pending', 'approved');
                """)
        }
        m.registerMigration("v8-questions") { db in
            // Questions an agent asked the operator or a peer. The messages a question turns into (to the
            // peer; the answer or expiry back to the asker) are sent after the row commits; a null id
            // marks one still owed, which core sends again until it is out (see Questions.swift).
            try db.execute(sql: """
                CREATE TABLE question (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    asker TEXT NOT NULL,
                    recipient TEXT NOT NULL,
                    question TEXT NOT NULL,
                    options TEXT NOT NULL,
                    multi INTEGER NOT NULL,
                    created_at REAL NOT NULL,
                    expires_at REAL NOT NULL,
                    state TEXT NOT NULL DEFAULT 'open',
                    choices TEXT NOT NULL DEFAULT '[]',
                    answer TEXT,
                    answered_by TEXT,
                    answered_at REAL,
                    ask_message_id INTEGER,
                    reply_message_id INTEGER
                );
                CREATE INDEX question_open ON question(expires_at) WHERE state = 'open';
                CREATE INDEX question_owed ON question(id)
                    WHERE (state != 'open' AND reply_message_id IS NULL) OR (state = 'open' AND recipient != 'operator' AND ask_message_id IS NULL);
                """)
        }
        m.registerMigration("v9-gateway-log") { db in
            // What each gated agent's gateway decided and moved; model answers carry their tokens.
            try db.execute(sql: """
                CREATE TABLE gateway_log (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    agent TEXT NOT NULL,
                    at REAL NOT NULL,
                    kind TEXT NOT NULL,
                    destination TEXT NOT NULL,
                    allowed INTEGER NOT NULL,
                    status INTEGER,
                    note TEXT NOT NULL,
                    bytes_out INTEGER NOT NULL,
                    bytes_in INTEGER NOT NULL,
                    input_tokens INTEGER,
                    output_tokens INTEGER,
                    cache_write_5m INTEGER,
                    cache_write_1h INTEGER,
                    cache_read INTEGER
                );
                CREATE INDEX gateway_log_agent ON gateway_log(agent, id);
                CREATE INDEX gateway_log_at ON gateway_log(at);
                """)
        }
        m.registerMigration("v10-spend-and-budgets") { db in
            // What each agent spent, priced by core when recorded: model answers the gateway metered
            // (source 'gateway') and turns the harness reported (source 'harness', keyed so a report sent
            // twice counts once). `counted`: whether the row is the agent's spend of record (a gated
            // agent's harness reports are not: its gateway metered the same tokens).
            try db.execute(sql: """
                CREATE TABLE spend (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    agent TEXT NOT NULL,
                    at REAL NOT NULL,
                    source TEXT NOT NULL,
                    turn_key TEXT,
                    model TEXT NOT NULL,
                    input INTEGER NOT NULL,
                    output INTEGER NOT NULL,
                    cache_write_5m INTEGER NOT NULL,
                    cache_write_1h INTEGER NOT NULL,
                    cache_read INTEGER NOT NULL,
                    usd REAL NOT NULL,
                    counted INTEGER NOT NULL,
                    cli_usd REAL
                );
                CREATE INDEX spend_agent_at ON spend(agent, at);
                CREATE INDEX spend_at ON spend(at);
                CREATE UNIQUE INDEX spend_turn ON spend(agent, turn_key, model) WHERE turn_key IS NOT NULL;
                -- The operator's caps: scope 'hive', or an agent's name for a raise over its agent.json.
                CREATE TABLE budget (
                    scope TEXT PRIMARY KEY NOT NULL,
                    budget TEXT NOT NULL,
                    set_at REAL NOT NULL
                );
                -- Notices sent once per agent, kind and period (a park, a warning), across restarts.
                CREATE TABLE budget_notice (
                    agent TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    period TEXT NOT NULL,
                    at REAL NOT NULL,
                    PRIMARY KEY (agent, kind, period)
                );
                """)
        }
        m.registerMigration("v11-message-search") { db in
            // Full-text search over message bodies (FTS5, an external-content index of `message`): kept in
            // step by triggers, so a send indexes its body in its own transaction and a retention sweep's
            // delete takes it out. Bodies never change after a send, so no update trigger.
            try db.execute(sql: """
                CREATE VIRTUAL TABLE message_fts USING fts5(body, content='message', content_rowid='id',
                                                            tokenize='unicode61 remove_diacritics 2', prefix='2 3');
                INSERT INTO message_fts(rowid, body) SELECT id, body FROM message;
                CREATE TRIGGER message_fts_insert AFTER INSERT ON message BEGIN
                    INSERT INTO message_fts(rowid, body) VALUES (new.id, new.body);
                END;
                CREATE TRIGGER message_fts_delete AFTER DELETE ON message BEGIN
                    INSERT INTO message_fts(message_fts, rowid, body) VALUES ('delete', old.id, old.body);
                END;
                """)
        }
        m.registerMigration("v12-nodes") { db in
            // The node an agent is placed on, for a hive on many hosts (PostgreSQL); always null here.
            try db.execute(sql: "ALTER TABLE agent ADD COLUMN node TEXT")
        }
        m.registerMigration("v13-node-endpoints") { _ in
            // On PostgreSQL each node publishes its endpoint's certificate and token hash. A hive on one
            // host has no nodes: nothing changes here, the name keeps both stores' versions in step.
        }
        return m
    }
}
