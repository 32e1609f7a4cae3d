import Foundation
import GRDB
import HiveWire

/// The gated agents' gateway decisions (``GatewayEntry``), written by core at the host end of each
/// cage's network: what an agent reached or was refused, what it moved, and the tokens each model
/// answer used.
extension Broker {
    public func recordGateway(_ agent: AgentName, _ e: GatewayEntry) throws {
        let u = e.usage
        try pool.write { db in
            try db.execute(sql: """
                INSERT INTO gateway_log (agent, at, kind, destination, allowed, status, note, bytes_out, bytes_in,
                                         input_tokens, output_tokens, cache_write_5m, cache_write_1h, cache_read)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [agent.rawValue, e.at, e.kind.rawValue, e.destination, e.allowed, e.status, e.note, e.bytesOut, e.bytesIn,
                                 u?.input, u?.output, u?.cacheWriteShort, u?.cacheWriteLong, u?.cacheRead])
        }
    }

    /// The newest `limit` entries of `agent`, newest first.
    public func gatewayLog(_ agent: AgentName, limit: Int) throws -> [GatewayEntry] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM gateway_log WHERE agent = ? ORDER BY id DESC LIMIT ?", arguments: [agent.rawValue, limit]).map { r in
                let usage: TokenCount? = (r["input_tokens"] as Int?).map { input in
                    TokenCount(input: input, output: r["output_tokens"] ?? 0, cacheWriteShort: r["cache_write_5m"] ?? 0,
                               cacheWriteLong: r["cache_write_1h"] ?? 0, cacheRead: r["cache_read"] ?? 0)
                }
                return GatewayEntry(at: r["at"], kind: GatewayEntry.Kind(rawValue: r["kind"]) ?? .connect, destination: r["destination"],
                                    allowed: r["allowed"], status: r["status"], note: r["note"], bytesOut: r["bytes_out"], bytesIn: r["bytes_in"], usage: usage)
            }
        }
    }

    /// The tokens of `agent`'s model answers since `since`, per model.
    public func gatewayUsage(_ agent: AgentName, since: Double) throws -> [(model: String, answers: Int, tokens: TokenCount)] {
        try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT destination, COUNT(*) AS answers, SUM(input_tokens) AS i, SUM(output_tokens) AS o, SUM(cache_write_5m) AS w5,
                       SUM(cache_write_1h) AS w1, SUM(cache_read) AS r
                FROM gateway_log WHERE agent = ? AND kind = 'model' AND at >= ? AND input_tokens IS NOT NULL GROUP BY destination
                """, arguments: [agent.rawValue, since]).map { r in
                (r["destination"], r["answers"], TokenCount(input: r["i"] ?? 0, output: r["o"] ?? 0, cacheWriteShort: r["w5"] ?? 0,
                                                            cacheWriteLong: r["w1"] ?? 0, cacheRead: r["r"] ?? 0))
            }
        }
    }

    /// Deletes entries older than `window` seconds.
    public func sweepGatewayLog(olderThan window: Double) throws -> Int {
        let cutoff = clock() - window
        return try pool.write { db in
            try db.execute(sql: "DELETE FROM gateway_log WHERE at < ?", arguments: [cutoff])
            return db.changesCount
        }
    }
}
