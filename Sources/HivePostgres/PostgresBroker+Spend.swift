import Foundation
import HiveBroker
import HiveWire
import PostgresNIO

/// Spend, budgets and the gateway log on PostgreSQL: the same rows and the same rules as on SQLite
/// (HiveBroker/Spend.swift, GatewayLog.swift).
extension PostgresBroker: SpendStore, GatewayLogStore {
    private static let spendColumns = "COALESCE(SUM(usd), 0)::float8, COALESCE(SUM(input + output + cache_write_5m + cache_write_1h), 0)::int8"

    public func recordSpend(_ agent: AgentName, _ rows: [SpendRow]) throws -> Bool {
        guard !rows.isEmpty else { return true }
        let logger = self.logger
        return try write { c in
            var inserted = 0
            for r in rows {
                inserted += try await c.changed("""
                    INSERT INTO spend (agent, at, source, turn_key, model, input, output, cache_write_5m, cache_write_1h, cache_read, usd, counted, cli_usd)
                    VALUES (\(agent.rawValue), \(r.at), \(r.source.rawValue), \(r.turnKey), \(r.model), \(r.tokens.input), \(r.tokens.output),
                            \(r.tokens.cacheWriteShort), \(r.tokens.cacheWriteLong), \(r.tokens.cacheRead), \(r.usd), \(r.counted), \(r.cliUSD))
                    ON CONFLICT (agent, turn_key, model) WHERE turn_key IS NOT NULL DO NOTHING RETURNING 1
                    """, logger: logger)
            }
            return inserted > 0
        }
    }

    public func meterSpend(_ agent: AgentName, _ r: SpendRow) throws {
        try write { c in
            try await c.query("""
                INSERT INTO spend (agent, at, source, turn_key, model, input, output, cache_write_5m, cache_write_1h, cache_read, usd, counted)
                VALUES (\(agent.rawValue), \(r.at), \(r.source.rawValue), \(r.turnKey), \(r.model), \(r.tokens.input), \(r.tokens.output),
                        \(r.tokens.cacheWriteShort), \(r.tokens.cacheWriteLong), \(r.tokens.cacheRead), \(r.usd), \(r.counted))
                ON CONFLICT (agent, turn_key, model) WHERE turn_key IS NOT NULL DO UPDATE SET
                    input = excluded.input, output = excluded.output, cache_write_5m = excluded.cache_write_5m,
                    cache_write_1h = excluded.cache_write_1h, cache_read = excluded.cache_read, usd = excluded.usd
                """, logger: self.logger)
        }
    }

    public func spent(_ agent: AgentName?, since: Double, excluding: AgentName?) throws -> Spent {
        try read { client in
            let query = agent.map { PostgresQuery(unsafeSQL: "SELECT \(Self.spendColumns) FROM spend WHERE agent = $1 AND at >= $2 AND counted",
                                                  binds: (try? Self.binds($0.rawValue, since)) ?? PostgresBindings()) }
                ?? PostgresQuery(unsafeSQL: "SELECT \(Self.spendColumns) FROM spend WHERE at >= $1 AND counted AND agent != $2",
                                 binds: (try? Self.binds(since, excluding?.rawValue ?? "")) ?? PostgresBindings())
            var spent = Spent(usd: 0, tokens: 0)
            for try await (usd, tokens) in try await client.query(query, logger: self.logger).decode((Double, Int).self) { spent = Spent(usd: usd, tokens: tokens) }
            return spent
        }
    }

    public func spendBreakdown(since: Double) throws -> (agents: [String: Spent], models: [String: Spent]) {
        try read { client in
            func by(_ column: String) async throws -> [String: Spent] {
                var out: [String: Spent] = [:]
                for try await (key, usd, tokens) in try await client.query(PostgresQuery(unsafeSQL: """
                    SELECT \(column), \(Self.spendColumns) FROM spend WHERE at >= $1 AND counted GROUP BY \(column)
                    """, binds: try Self.binds(since)), logger: self.logger).decode((String, Double, Int).self) { out[key] = Spent(usd: usd, tokens: tokens) }
                return out
            }
            return (try await by("agent"), try await by("model"))
        }
    }

    public func recentTurnCosts(_ agent: AgentName, limit: Int) throws -> [Spent] {
        try read { client in
            var out: [Spent] = []
            for try await (usd, tokens) in try await client.query(PostgresQuery(unsafeSQL: """
                SELECT \(Self.spendColumns) FROM spend WHERE agent = $1 AND source = 'harness' GROUP BY turn_key ORDER BY MAX(id) DESC LIMIT $2
                """, binds: try Self.binds(agent.rawValue, limit)), logger: self.logger).decode((Double, Int).self) { out.append(Spent(usd: usd, tokens: tokens)) }
            return out
        }
    }

    public func operatorBudgets() throws -> [String: Budget] {
        try read { client in
            var out: [String: Budget] = [:]
            for try await (scope, text) in try await client.query("SELECT scope, budget FROM budget", logger: self.logger).decode((String, String).self) {
                if let b = try? JSONDecoder().decode(Budget.self, from: Data(text.utf8)) { out[scope] = b }
            }
            return out
        }
    }

    public func setOperatorBudget(_ scope: String, _ budget: Budget?) throws {
        let text = try budget.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        let now = clock()
        try write { c in
            if let text {
                try await c.query("""
                    INSERT INTO budget (scope, budget, set_at) VALUES (\(scope), \(text), \(now))
                    ON CONFLICT (scope) DO UPDATE SET budget = excluded.budget, set_at = excluded.set_at
                    """, logger: self.logger)
            } else {
                try await c.query("DELETE FROM budget WHERE scope = \(scope)", logger: self.logger)
            }
        }
    }

    public func firstNotice(_ agent: AgentName, kind: String, period: String) throws -> Bool {
        let now = clock()
        return try write { c in
            try await c.changed("""
                INSERT INTO budget_notice (agent, kind, period, at) VALUES (\(agent.rawValue), \(kind), \(period), \(now)) ON CONFLICT DO NOTHING RETURNING 1
                """, logger: self.logger) > 0
        }
    }

    public func sweepSpend(olderThan window: Double) throws -> Int {
        let cutoff = clock() - window
        return try write { c in
            let n = try await c.changed("DELETE FROM spend WHERE at < \(cutoff) RETURNING 1", logger: self.logger)
            try await c.query("DELETE FROM budget_notice WHERE at < \(cutoff)", logger: self.logger)
            return n
        }
    }

    // MARK: - The gateway log

    public func recordGateway(_ agent: AgentName, _ e: GatewayEntry) throws {
        let u = e.usage
        try write { c in
            try await c.query("""
                INSERT INTO gateway_log (agent, at, kind, destination, allowed, status, note, bytes_out, bytes_in,
                                         input_tokens, output_tokens, cache_write_5m, cache_write_1h, cache_read)
                VALUES (\(agent.rawValue), \(e.at), \(e.kind.rawValue), \(e.destination), \(e.allowed), \(e.status), \(e.note), \(e.bytesOut), \(e.bytesIn),
                        \(u?.input), \(u?.output), \(u?.cacheWriteShort), \(u?.cacheWriteLong), \(u?.cacheRead))
                """, logger: self.logger)
        }
    }

    public func gatewayLog(_ agent: AgentName, limit: Int) throws -> [GatewayEntry] {
        try read { client in
            var out: [GatewayEntry] = []
            for try await (at, kind, destination, allowed, status, note, bytesOut, bytesIn, input, output, w5, w1, cached) in try await client.query("""
                SELECT at, kind, destination, allowed, status, note, bytes_out, bytes_in, input_tokens, output_tokens, cache_write_5m, cache_write_1h, cache_read
                FROM gateway_log WHERE agent = \(agent.rawValue) ORDER BY id DESC LIMIT \(limit)
                """, logger: self.logger).decode((Double, String, String, Bool, Int?, String, Int, Int, Int?, Int?, Int?, Int?, Int?).self) {
                let usage = input.map { TokenCount(input: $0, output: output ?? 0, cacheWriteShort: w5 ?? 0, cacheWriteLong: w1 ?? 0, cacheRead: cached ?? 0) }
                out.append(GatewayEntry(at: at, kind: GatewayEntry.Kind(rawValue: kind) ?? .connect, destination: destination, allowed: allowed,
                                        status: status, note: note, bytesOut: bytesOut, bytesIn: bytesIn, usage: usage))
            }
            return out
        }
    }

    public func gatewayUsage(_ agent: AgentName, since: Double) throws -> [(model: String, answers: Int, tokens: TokenCount)] {
        try read { client in
            var out: [(model: String, answers: Int, tokens: TokenCount)] = []
            for try await (model, answers, i, o, w5, w1, r) in try await client.query("""
                SELECT destination, COUNT(*), SUM(input_tokens)::int8, SUM(output_tokens)::int8, SUM(cache_write_5m)::int8, SUM(cache_write_1h)::int8,
                       SUM(cache_read)::int8
                FROM gateway_log WHERE agent = \(agent.rawValue) AND kind = 'model' AND at >= \(since) AND input_tokens IS NOT NULL GROUP BY destination
                """, logger: self.logger).decode((String, Int, Int?, Int?, Int?, Int?, Int?).self) {
                out.append((model, answers, TokenCount(input: i ?? 0, output: o ?? 0, cacheWriteShort: w5 ?? 0, cacheWriteLong: w1 ?? 0, cacheRead: r ?? 0)))
            }
            return out
        }
    }

    public func sweepGatewayLog(olderThan window: Double) throws -> Int {
        let cutoff = clock() - window
        return try write { c in try await c.changed("DELETE FROM gateway_log WHERE at < \(cutoff) RETURNING 1", logger: self.logger) }
    }
}
