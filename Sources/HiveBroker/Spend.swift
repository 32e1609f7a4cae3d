import Foundation
import GRDB
import HiveWire

/// One priced line of an agent's spend: a model answer its gateway metered, or one model's share of a
/// turn its harness reported.
public struct SpendRow: Sendable, Equatable {
    public enum Source: String, Sendable { case gateway, harness }
    public var at: Double
    public var source: Source
    /// The harness's id of the turn (harness rows only): a second report of it is ignored.
    public var turnKey: String?
    public var model: String
    public var tokens: TokenCount
    public var usd: Double
    /// Whether it is spend of record (budgets and totals count it).
    public var counted: Bool
    /// The CLI's own figure for the turn (first model of a harness report only).
    public var cliUSD: Double?
    public init(at: Double, source: Source, turnKey: String? = nil, model: String, tokens: TokenCount, usd: Double, counted: Bool, cliUSD: Double? = nil) {
        self.at = at; self.source = source; self.turnKey = turnKey; self.model = model; self.tokens = tokens; self.usd = usd
        self.counted = counted; self.cliUSD = cliUSD
    }
}

extension TokenCount {
    /// What a token budget counts: input, output and cache writes.
    public var budgeted: Int { input + output + cacheWriteShort + cacheWriteLong }
}

/// Spend and budgets, kept in the broker so they survive restarts.
public protocol SpendStore: Sendable {
    /// Records rows of one agent in one transaction; false when a harness turn was already recorded.
    func recordSpend(_ agent: AgentName, _ rows: [SpendRow]) throws -> Bool
    /// Records or replaces (same agent, key and model) a metered answer's row: its start, then its end.
    func meterSpend(_ agent: AgentName, _ row: SpendRow) throws
    /// Spend of record since `since`: of one agent, or (nil) of every agent except `excluding`.
    func spent(_ agent: AgentName?, since: Double, excluding: AgentName?) throws -> Spent
    /// Spend of record since `since`, per agent and per model.
    func spendBreakdown(since: Double) throws -> (agents: [String: Spent], models: [String: Spent])
    /// The costs of an agent's newest harness-reported turns, newest first.
    func recentTurnCosts(_ agent: AgentName, limit: Int) throws -> [Spent]
    /// The operator's caps by scope (`hive` or an agent's name).
    func operatorBudgets() throws -> [String: Budget]
    func setOperatorBudget(_ scope: String, _ budget: Budget?) throws
    /// True the first time for (agent, kind, period): a notice to send once.
    func firstNotice(_ agent: AgentName, kind: String, period: String) throws -> Bool
    func sweepSpend(olderThan window: Double) throws -> Int
}

extension Broker: SpendStore {
    public func recordSpend(_ agent: AgentName, _ rows: [SpendRow]) throws -> Bool {
        try pool.write { db in
            var inserted = 0
            for r in rows {
                try db.execute(sql: """
                    INSERT OR IGNORE INTO spend (agent, at, source, turn_key, model, input, output, cache_write_5m, cache_write_1h, cache_read,
                                                 usd, counted, cli_usd)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [agent.rawValue, r.at, r.source.rawValue, r.turnKey, r.model, r.tokens.input, r.tokens.output,
                                     r.tokens.cacheWriteShort, r.tokens.cacheWriteLong, r.tokens.cacheRead, r.usd, r.counted, r.cliUSD])
                inserted += db.changesCount
            }
            return inserted > 0 || rows.isEmpty
        }
    }

    public func meterSpend(_ agent: AgentName, _ r: SpendRow) throws {
        try pool.write { db in
            try db.execute(sql: """
                INSERT INTO spend (agent, at, source, turn_key, model, input, output, cache_write_5m, cache_write_1h, cache_read, usd, counted, cli_usd)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)
                ON CONFLICT (agent, turn_key, model) WHERE turn_key IS NOT NULL DO UPDATE SET
                    input = excluded.input, output = excluded.output, cache_write_5m = excluded.cache_write_5m,
                    cache_write_1h = excluded.cache_write_1h, cache_read = excluded.cache_read, usd = excluded.usd
                """, arguments: [agent.rawValue, r.at, r.source.rawValue, r.turnKey, r.model, r.tokens.input, r.tokens.output,
                                 r.tokens.cacheWriteShort, r.tokens.cacheWriteLong, r.tokens.cacheRead, r.usd, r.counted])
        }
    }

    private static let spentColumns = "COALESCE(SUM(usd), 0) AS usd, COALESCE(SUM(input + output + cache_write_5m + cache_write_1h), 0) AS tokens"

    public func spent(_ agent: AgentName?, since: Double, excluding: AgentName?) throws -> Spent {
        try pool.read { db in
            let row: Row?
            if let agent {
                row = try Row.fetchOne(db, sql: "SELECT \(Self.spentColumns) FROM spend WHERE agent = ? AND at >= ? AND counted = 1",
                                       arguments: [agent.rawValue, since])
            } else {
                row = try Row.fetchOne(db, sql: "SELECT \(Self.spentColumns) FROM spend WHERE at >= ? AND counted = 1 AND agent != ?",
                                       arguments: [since, excluding?.rawValue ?? ""])
            }
            return Spent(usd: row?["usd"] ?? 0, tokens: row?["tokens"] ?? 0)
        }
    }

    public func spendBreakdown(since: Double) throws -> (agents: [String: Spent], models: [String: Spent]) {
        try pool.read { db in
            func by(_ column: String) throws -> [String: Spent] {
                try Row.fetchAll(db, sql: "SELECT \(column) AS k, \(Self.spentColumns) FROM spend WHERE at >= ? AND counted = 1 GROUP BY \(column)",
                                 arguments: [since]).reduce(into: [:]) { $0[$1["k"]] = Spent(usd: $1["usd"], tokens: $1["tokens"]) }
            }
            return (try by("agent"), try by("model"))
        }
    }

    public func recentTurnCosts(_ agent: AgentName, limit: Int) throws -> [Spent] {
        try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT \(Self.spentColumns) FROM spend WHERE agent = ? AND source = 'harness'
                GROUP BY turn_key ORDER BY MAX(id) DESC LIMIT ?
                """, arguments: [agent.rawValue, limit]).map { Spent(usd: $0["usd"], tokens: $0["tokens"]) }
        }
    }

    public func operatorBudgets() throws -> [String: Budget] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT scope, budget FROM budget").reduce(into: [:]) { out, r in
                let text: String = r["budget"]
                if let b = try? JSONDecoder().decode(Budget.self, from: Data(text.utf8)) { out[r["scope"]] = b }
            }
        }
    }

    public func setOperatorBudget(_ scope: String, _ budget: Budget?) throws {
        let text = try budget.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        try pool.write { db in
            if let text {
                try db.execute(sql: "INSERT INTO budget (scope, budget, set_at) VALUES (?, ?, ?) ON CONFLICT(scope) DO UPDATE SET budget = excluded.budget, set_at = excluded.set_at",
                               arguments: [scope, text, clock()])
            } else {
                try db.execute(sql: "DELETE FROM budget WHERE scope = ?", arguments: [scope])
            }
        }
    }

    public func firstNotice(_ agent: AgentName, kind: String, period: String) throws -> Bool {
        try pool.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO budget_notice (agent, kind, period, at) VALUES (?, ?, ?, ?)",
                           arguments: [agent.rawValue, kind, period, clock()])
            return db.changesCount > 0
        }
    }

    public func sweepSpend(olderThan window: Double) throws -> Int {
        let cutoff = clock() - window
        return try pool.write { db in
            try db.execute(sql: "DELETE FROM spend WHERE at < ?", arguments: [cutoff])
            let n = db.changesCount
            try db.execute(sql: "DELETE FROM budget_notice WHERE at < ?", arguments: [cutoff])
            return n
        }
    }
}
