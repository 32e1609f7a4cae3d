import HiveBroker

/// The PostgreSQL schema. Its migrations carry the names of the SQLite store's (``Broker/schemaVersion``),
/// so one name means one schema on both stores: a hive's data has one version whichever store holds it.
/// The store came after SQLite's v11, so its first migration makes everything up to that version at once;
/// every later one is added to both stores under one name.
enum PostgresSchema {
    /// The advisory lock a node holds while it migrates (the others wait).
    static let migrationLock: Int64 = 0x6869_7665_0001
    /// Held while a cage uid is handed out, so two nodes never hand out the same one.
    static let uidLock: Int64 = 0x6869_7665_0002
    /// With the node's name (hashed) as its second key: held by the node of that name.
    static let nodeLock: Int32 = 0x6869_7665
    /// Held by the node doing a duty, for as long as its session lives (one key per duty).
    static func dutyLock(_ duty: Duty) -> Int64 { 0x6869_7665_0100 + Int64(Duty.allCases.firstIndex(of: duty)!) }

    static let migrations: [(String, [String])] = [
        ("v11-message-search", [
            """
            CREATE TABLE agent (
                name TEXT PRIMARY KEY,
                created_at DOUBLE PRECISION NOT NULL,
                destroyed_at DOUBLE PRECISION,
                uid BIGINT,
                stopped BOOLEAN NOT NULL DEFAULT false,
                node TEXT
            )
            """,
            "CREATE TABLE hive_setting (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
            // Ids never reused (a sequence never goes back), as AUTOINCREMENT on SQLite: an old in_reply_to
            // never points at a newer, unrelated message.
            """
            CREATE TABLE message (
                id BIGSERIAL PRIMARY KEY,
                sender TEXT NOT NULL,
                recipient TEXT NOT NULL,
                body TEXT NOT NULL,
                sent_at DOUBLE PRECISION NOT NULL,
                delivered_at DOUBLE PRECISION,
                acked_at DOUBLE PRECISION,
                in_reply_to BIGINT,
                broadcast BOOLEAN NOT NULL DEFAULT false,
                redelivered BOOLEAN NOT NULL DEFAULT false,
                dead_at DOUBLE PRECISION,
                dead_reason TEXT
            )
            """,
            "CREATE INDEX message_pending ON message (recipient, id) WHERE delivered_at IS NULL AND acked_at IS NULL AND dead_at IS NULL",
            "CREATE INDEX message_inflight ON message (recipient) WHERE delivered_at IS NOT NULL AND acked_at IS NULL AND dead_at IS NULL",
            "CREATE INDEX message_acked ON message (acked_at) WHERE acked_at IS NOT NULL",
            "CREATE INDEX message_dead ON message (dead_at) WHERE dead_at IS NOT NULL",
            "CREATE INDEX message_sender ON message (sender, id)",
            "CREATE INDEX message_recipient ON message (recipient, id)",
            // Full-text search as SQLite's unicode61 tokenizer with remove_diacritics: no stemming, no stop
            // words (any language), accents folded ('Déploy' finds 'deploy'). unaccent is a trusted extension:
            // the database's owner may create it.
            "CREATE EXTENSION IF NOT EXISTS unaccent",
            "CREATE TEXT SEARCH CONFIGURATION hive_search (COPY = simple)",
            "ALTER TEXT SEARCH CONFIGURATION hive_search ALTER MAPPING FOR hword, hword_part, word WITH unaccent, simple",
            "CREATE INDEX message_search ON message USING gin (to_tsvector('hive_search', body))",
            """
            CREATE TABLE reminder (
                id BIGSERIAL PRIMARY KEY,
                agent TEXT NOT NULL,
                body TEXT NOT NULL,
                file_path TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                due_at DOUBLE PRECISION NOT NULL,
                state TEXT NOT NULL DEFAULT 'pending',
                finished_at DOUBLE PRECISION,
                message_id BIGINT,
                attempts INTEGER NOT NULL DEFAULT 0,
                last_error TEXT
            )
            """,
            "CREATE INDEX reminder_due ON reminder (due_at) WHERE state = 'pending'",
            "CREATE INDEX reminder_agent_due ON reminder (agent, due_at, id) WHERE state = 'pending'",
            "CREATE INDEX reminder_finished ON reminder (finished_at) WHERE finished_at IS NOT NULL",
            """
            CREATE TABLE reminder_attempt (
                id BIGSERIAL PRIMARY KEY,
                reminder_id BIGINT NOT NULL,
                agent TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL,
                ok BOOLEAN NOT NULL,
                error TEXT
            )
            """,
            "CREATE INDEX reminder_attempt_agent ON reminder_attempt (agent, at)",
            """
            CREATE TABLE approval (
                id BIGSERIAL PRIMARY KEY,
                kind TEXT NOT NULL,
                agent TEXT NOT NULL,
                commit_sha TEXT,
                description TEXT,
                diff TEXT,
                state TEXT NOT NULL,
                note TEXT,
                requested_by TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                resolved_at DOUBLE PRECISION
            )
            """,
            "CREATE INDEX approval_open ON approval (state) WHERE state IN ('pending', 'approved')",
            // One open request per agent and kind, kept by the database itself (two nodes may ask at once).
            "CREATE UNIQUE INDEX approval_one_open ON approval (agent, kind) WHERE state IN ('pending', 'approved')",
            """
            CREATE TABLE question (
                id BIGSERIAL PRIMARY KEY,
                asker TEXT NOT NULL,
                recipient TEXT NOT NULL,
                question TEXT NOT NULL,
                options TEXT NOT NULL,
                multi BOOLEAN NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                state TEXT NOT NULL DEFAULT 'open',
                choices TEXT NOT NULL DEFAULT '[]',
                answer TEXT,
                answered_by TEXT,
                answered_at DOUBLE PRECISION,
                ask_message_id BIGINT,
                reply_message_id BIGINT
            )
            """,
            "CREATE INDEX question_open ON question (expires_at) WHERE state = 'open'",
            """
            CREATE INDEX question_owed ON question (id)
                WHERE (state != 'open' AND reply_message_id IS NULL) OR (state = 'open' AND recipient != 'operator' AND ask_message_id IS NULL)
            """,
            """
            CREATE TABLE gateway_log (
                id BIGSERIAL PRIMARY KEY,
                agent TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL,
                kind TEXT NOT NULL,
                destination TEXT NOT NULL,
                allowed BOOLEAN NOT NULL,
                status BIGINT,
                note TEXT NOT NULL,
                bytes_out BIGINT NOT NULL,
                bytes_in BIGINT NOT NULL,
                input_tokens BIGINT,
                output_tokens BIGINT,
                cache_write_5m BIGINT,
                cache_write_1h BIGINT,
                cache_read BIGINT
            )
            """,
            "CREATE INDEX gateway_log_agent ON gateway_log (agent, id)",
            "CREATE INDEX gateway_log_at ON gateway_log (at)",
            """
            CREATE TABLE spend (
                id BIGSERIAL PRIMARY KEY,
                agent TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL,
                source TEXT NOT NULL,
                turn_key TEXT,
                model TEXT NOT NULL,
                input BIGINT NOT NULL,
                output BIGINT NOT NULL,
                cache_write_5m BIGINT NOT NULL,
                cache_write_1h BIGINT NOT NULL,
                cache_read BIGINT NOT NULL,
                usd DOUBLE PRECISION NOT NULL,
                counted BOOLEAN NOT NULL,
                cli_usd DOUBLE PRECISION
            )
            """,
            "CREATE INDEX spend_agent_at ON spend (agent, at)",
            "CREATE INDEX spend_at ON spend (at)",
            "CREATE UNIQUE INDEX spend_turn ON spend (agent, turn_key, model) WHERE turn_key IS NOT NULL",
            "CREATE TABLE budget (scope TEXT PRIMARY KEY, budget TEXT NOT NULL, set_at DOUBLE PRECISION NOT NULL)",
            """
            CREATE TABLE budget_notice (
                agent TEXT NOT NULL,
                kind TEXT NOT NULL,
                period TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (agent, kind, period)
            )
            """,
        ]),
        // The hive's nodes and their heartbeats: a node's lease on its agents runs until its last heartbeat plus
        // its `lease`, by the database's clock. Each agent's state as its node last published it, so every
        // node can list every agent.
        ("v12-nodes", [
            """
            CREATE TABLE hive_node (
                name TEXT PRIMARY KEY,
                host TEXT NOT NULL,
                endpoint TEXT,
                started_at DOUBLE PRECISION NOT NULL,
                heartbeat_at DOUBLE PRECISION NOT NULL,
                cores INTEGER NOT NULL,
                memory_mb BIGINT NOT NULL,
                load1 DOUBLE PRECISION NOT NULL,
                lease DOUBLE PRECISION NOT NULL
            )
            """,
            "ALTER TABLE agent ADD COLUMN state TEXT, ADD COLUMN detail TEXT, ADD COLUMN state_since DOUBLE PRECISION",
            "CREATE INDEX agent_node ON agent (node)",
        ]),
        // What another node needs to reach one and know it: the certificate its endpoint serves (pinned,
        // the database being the trust anchor) and the SHA-256 of its node token; and moves under way.
        ("v13-node-endpoints", [
            "ALTER TABLE hive_node ADD COLUMN certificate TEXT, ADD COLUMN token_sha256 TEXT",
            // The node an agent is being moved to (hive move), until it arrives or the move is called off.
            "ALTER TABLE agent ADD COLUMN moving_to TEXT",
        ]),
    ]
}
