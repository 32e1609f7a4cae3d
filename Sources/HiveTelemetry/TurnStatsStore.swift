import Foundation
import GRDB

/// One finished turn, as `turn-stats.sqlite` keeps it (about 200 bytes a row).
public struct TurnStat: Codable, Sendable, Equatable {
    public var id: Int64?
    public var startedAt: Double
    public var endedAt: Double
    public var model: String?
    public var sessionID: String?
    /// Who woke the turn (a sender name, `system`, `reminder`), or `compact` for a compaction turn.
    public var wakeSource: String
    public var messageID: Int64?
    /// ok | failed | prompt_too_long | rate_limited
    public var resultKind: String
    public var detail: String?
    public var inputTokens: Int
    public var outputTokens: Int
    public var cacheReadTokens: Int
    public var cacheCreationTokens: Int
    public var contextTokens: Int?
    public var contextWindow: Int?
    public var costUSD: Double
    public var toolCalls: Int
    /// JSON object: tool name → count.
    public var toolBreakdown: String
    /// continue | fresh | compact
    public var sessionAction: String
    public var sessionReason: String
    /// Estimated input cost of continuing and of starting fresh, in base-price tokens.
    public var estimatedContinueCost: Double
    public var estimatedFreshCost: Double
    public var exitStatus: Int?
    /// Of `cacheCreationTokens`, those written to the 1-hour cache (2x base input instead of 1.25x).
    public var cacheCreation1hTokens: Int = 0
    /// JSON object: model → {input, output, cache_read, cache_creation, cache_creation_1h, cost_usd}, this turn's share.
    public var modelUsage: String = "{}"
    /// JSON array of the tools the CLI refused to run in this turn.
    public var permissionDenials: String = "[]"
    /// The Claude Code version that ran the turn.
    public var cliVersion: String?
    /// The CLI's own figure for the turn (the delta of its running `total_cost_usd`), beside ours
    /// (`costUSD`, from the tokens and the price table) for comparison; never summed as ours.
    public var cliCostUSD: Double?
    /// Whether core has this turn's report (its price is then core's, and its budget counted it).
    public var reported = false

    public var durationSeconds: Double { endedAt - startedAt }

    public init(id: Int64?, startedAt: Double, endedAt: Double, model: String?, sessionID: String?, wakeSource: String,
                messageID: Int64?, resultKind: String, detail: String?, inputTokens: Int, outputTokens: Int,
                cacheReadTokens: Int, cacheCreationTokens: Int, contextTokens: Int?, contextWindow: Int?, costUSD: Double,
                toolCalls: Int, toolBreakdown: String, sessionAction: String, sessionReason: String,
                estimatedContinueCost: Double, estimatedFreshCost: Double, exitStatus: Int?) {
        self.id = id; self.startedAt = startedAt; self.endedAt = endedAt; self.model = model; self.sessionID = sessionID
        self.wakeSource = wakeSource; self.messageID = messageID; self.resultKind = resultKind; self.detail = detail
        self.inputTokens = inputTokens; self.outputTokens = outputTokens; self.cacheReadTokens = cacheReadTokens
        self.cacheCreationTokens = cacheCreationTokens; self.contextTokens = contextTokens; self.contextWindow = contextWindow
        self.costUSD = costUSD; self.toolCalls = toolCalls; self.toolBreakdown = toolBreakdown; self.sessionAction = sessionAction
        self.sessionReason = sessionReason; self.estimatedContinueCost = estimatedContinueCost
        self.estimatedFreshCost = estimatedFreshCost; self.exitStatus = exitStatus
    }
}

/// `<harness>/turn-stats.sqlite`: one row per turn.
public final class TurnStatsStore: Sendable {
    private let db: DatabaseQueue

    public init(path: String) throws {
        db = try DatabaseQueue(path: path)
        try db.writeWithoutTransaction { db in _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL") }
        var m = DatabaseMigrator()
        m.registerMigration("v1-turns") { db in
            try db.execute(sql: """
                CREATE TABLE turn (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    started_at REAL NOT NULL, ended_at REAL NOT NULL,
                    model TEXT, session_id TEXT, wake_source TEXT NOT NULL, message_id INTEGER,
                    result_kind TEXT NOT NULL, detail TEXT,
                    input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
                    cache_read_tokens INTEGER NOT NULL, cache_creation_tokens INTEGER NOT NULL,
                    context_tokens INTEGER, context_window INTEGER,
                    cost_usd REAL NOT NULL, tool_calls INTEGER NOT NULL, tool_breakdown TEXT NOT NULL,
                    session_action TEXT NOT NULL, session_reason TEXT NOT NULL,
                    estimated_continue_cost REAL NOT NULL, estimated_fresh_cost REAL NOT NULL,
                    exit_status INTEGER
                );
                CREATE INDEX turn_started ON turn(started_at);
                """)
        }
        m.registerMigration("v2-turn-sources") { db in
            try db.execute(sql: """
                ALTER TABLE turn ADD COLUMN cache_creation_1h_tokens INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE turn ADD COLUMN model_usage TEXT NOT NULL DEFAULT '{}';
                ALTER TABLE turn ADD COLUMN permission_denials TEXT NOT NULL DEFAULT '[]';
                ALTER TABLE turn ADD COLUMN cli_version TEXT;
                """)
        }
        m.registerMigration("v3-turn-prices") { db in
            try db.execute(sql: """
                ALTER TABLE turn ADD COLUMN cli_cost_usd REAL;
                ALTER TABLE turn ADD COLUMN reported INTEGER NOT NULL DEFAULT 0;
                -- Turns from before reports existed are history, not news: sent now, they would all count today.
                UPDATE turn SET reported = 1;
                """)
        }
        try m.migrate(db)
    }

    /// Core priced and counted turn `id`: its cost is core's figure from now on.
    public func markReported(_ id: Int64, costUSD: Double) throws {
        try db.write { db in try db.execute(sql: "UPDATE turn SET reported = 1, cost_usd = ? WHERE id = ?", arguments: [costUSD, id]) }
    }

    /// The oldest turns core has not yet acknowledged (a report lost to a broken connection or a core restart).
    public func unreported(limit: Int) throws -> [TurnStat] {
        try db.read { db in try Row.fetchAll(db, sql: "SELECT * FROM turn WHERE reported = 0 ORDER BY id LIMIT ?", arguments: [limit]).map(Self.stat) }
    }

    @discardableResult
    public func record(_ stat: TurnStat) throws -> Int64 {
        try db.write { db in
            var row = stat
            try db.execute(sql: """
                INSERT INTO turn (started_at, ended_at, model, session_id, wake_source, message_id, result_kind, detail,
                    input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, context_tokens, context_window,
                    cost_usd, tool_calls, tool_breakdown, session_action, session_reason, estimated_continue_cost,
                    estimated_fresh_cost, exit_status, cache_creation_1h_tokens, model_usage, permission_denials, cli_version,
                    cli_cost_usd, reported)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [row.startedAt, row.endedAt, row.model, row.sessionID, row.wakeSource, row.messageID,
                                 row.resultKind, row.detail, row.inputTokens, row.outputTokens, row.cacheReadTokens,
                                 row.cacheCreationTokens, row.contextTokens, row.contextWindow, row.costUSD, row.toolCalls,
                                 row.toolBreakdown, row.sessionAction, row.sessionReason, row.estimatedContinueCost,
                                 row.estimatedFreshCost, row.exitStatus, row.cacheCreation1hTokens, row.modelUsage,
                                 row.permissionDenials, row.cliVersion, row.cliCostUSD, row.reported])
            row.id = db.lastInsertedRowID
            return row.id!
        }
    }

    /// Turns that started at or after `since` (unix seconds), oldest first.
    public func turns(since: Double = 0, limit: Int = 10_000) throws -> [TurnStat] {
        try db.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM turn WHERE started_at >= ? ORDER BY id LIMIT ?", arguments: [since, limit]).map(Self.stat)
        }
    }

    /// The newest `limit` turns, oldest first.
    public func recent(_ limit: Int) throws -> [TurnStat] {
        try db.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM turn ORDER BY id DESC LIMIT ?", arguments: [limit]).map(Self.stat).reversed()
        }
    }

    /// The most recent turn, if any.
    public func last() throws -> TurnStat? {
        try db.read { db in try Row.fetchOne(db, sql: "SELECT * FROM turn ORDER BY id DESC LIMIT 1").map(Self.stat) }
    }

    /// The first-turn context of the most recent fresh session: what a fresh start costs here.
    public func freshBaseline() throws -> Int? {
        try db.read { db in
            try Int.fetchOne(db, sql: "SELECT context_tokens FROM turn WHERE session_action = 'fresh' AND result_kind = 'ok' AND context_tokens IS NOT NULL ORDER BY id DESC LIMIT 1")
        }
    }

    public func sweep(olderThan window: Double, now: Double = Date().timeIntervalSince1970, batch: Int = 1000) throws -> Int {
        try Retention.sweep(db, table: "turn", column: "started_at", cutoff: now - window, batch: batch)
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T { try db.read(body) }

    private static func stat(_ r: Row) -> TurnStat {
        var t = TurnStat(id: r["id"], startedAt: r["started_at"], endedAt: r["ended_at"], model: r["model"], sessionID: r["session_id"],
                 wakeSource: r["wake_source"], messageID: r["message_id"], resultKind: r["result_kind"], detail: r["detail"],
                 inputTokens: r["input_tokens"], outputTokens: r["output_tokens"], cacheReadTokens: r["cache_read_tokens"],
                 cacheCreationTokens: r["cache_creation_tokens"], contextTokens: r["context_tokens"], contextWindow: r["context_window"],
                 costUSD: r["cost_usd"], toolCalls: r["tool_calls"], toolBreakdown: r["tool_breakdown"],
                 sessionAction: r["session_action"], sessionReason: r["session_reason"],
                 estimatedContinueCost: r["estimated_continue_cost"], estimatedFreshCost: r["estimated_fresh_cost"],
                 exitStatus: r["exit_status"])
        t.cacheCreation1hTokens = r["cache_creation_1h_tokens"]
        t.modelUsage = r["model_usage"]
        t.permissionDenials = r["permission_denials"]
        t.cliVersion = r["cli_version"]
        t.cliCostUSD = r["cli_cost_usd"]
        t.reported = r["reported"]
        return t
    }
}
