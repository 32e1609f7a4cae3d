import Foundation
import HiveBroker
import HiveWire
import PostgresNIO

/// Full-text search over messages on PostgreSQL: a GIN index of each body's text vector (`hive_search`:
/// words as they are, accents folded; PostgresSchema), the
/// terms ANDed into one tsquery, filters on the row; ranked like the SQLite store's (lower is better, a
/// query with a phrase newest first) and searched newest first in the same windows (``Broker/recentWindows``).
extension PostgresBroker {
    public func search(_ query: SearchQuery, party: String?, limit: Int) throws -> [SearchHit] {
        guard !query.terms.isEmpty else { return [] }
        return try read { client in
            var binds = PostgresBindings()
            func bind(_ v: some PostgresThrowingDynamicTypeEncodable) throws -> String {
                try binds.append(v)
                return "$\(binds.count)"
            }
            let parts = try query.terms.map { term -> String in
                switch term {
                case .word(let w): return "plainto_tsquery('hive_search', \(try bind(w)))"
                case .phrase(let words): return "phraseto_tsquery('hive_search', \(try bind(words.joined(separator: " "))))"
                case .prefix(let p): return "to_tsquery('hive_search', quote_literal(\(try bind(p))) || ':*')"
                }
            }
            var filters = ["to_tsvector('hive_search', m.body) @@ q.q"]
            if let from = query.from { filters.append("m.sender = \(try bind(from))") }
            if let to = query.to { filters.append("m.recipient = \(try bind(to))") }
            if let after = query.after { filters.append("m.sent_at >= \(try bind(after))") }
            if let before = query.before { filters.append("m.sent_at < \(try bind(before))") }
            // What it sent, and what was handed to it (a message held back, by a budget or a stop, stays unseen).
            if let party { let p = try bind(party); filters.append("(m.sender = \(p) OR (m.recipient = \(p) AND m.delivered_at IS NOT NULL))") }
            let phrase = query.terms.contains { if case .phrase = $0 { true } else { false } }
            let limitBind = try bind(limit)
            let base = binds
            func run(minID: Int64?) async throws -> [SearchHit] {
                let window = minID.map { "AND m.id >= \($0)" } ?? ""
                let rows = try await client.query(PostgresQuery(unsafeSQL: """
                    WITH q AS (SELECT \(parts.joined(separator: " && ")) AS q),
                         hits AS (SELECT m.id, \(phrase ? "0.0::float8" : "-ts_rank(to_tsvector('hive_search', m.body), q.q)::float8") AS score
                                  FROM message m, q WHERE \(filters.joined(separator: " AND ")) \(window)
                                  ORDER BY \(phrase ? "m.id DESC" : "score, m.id DESC") LIMIT \(limitBind))
                    SELECT \(Self.messageColumns.split(separator: ",").map { "m." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")),
                           ts_headline('hive_search', m.body, q.q, 'StartSel=[, StopSel=], MaxWords=16, MinWords=4, ShortWord=1, MaxFragments=1, FragmentDelimiter=…'),
                           hits.score
                    FROM hits JOIN message m ON m.id = hits.id, q
                    ORDER BY \(phrase ? "m.id DESC" : "hits.score, m.id DESC")
                    """, binds: base), logger: self.logger)
                var out: [SearchHit] = []
                for try await row in rows {
                    let r = row.makeRandomAccess()
                    let delivered = try r[5].decode(Double?.self), acked = try r[6].decode(Double?.self), dead = try r[7].decode(Double?.self)
                    let message = MessageView(id: try r[0].decode(Int64.self), from: try r[1].decode(String.self), to: try r[2].decode(String.self),
                                              body: try r[3].decode(String.self), sentAt: try r[4].decode(Double.self), deliveredAt: delivered,
                                              ackedAt: acked, inReplyTo: try r[9].decode(Int64?.self), broadcast: try r[10].decode(Bool.self),
                                              redelivered: try r[11].decode(Bool.self), state: MessageState(deliveredAt: delivered, ackedAt: acked, deadAt: dead),
                                              deadReason: try r[8].decode(String?.self))
                    out.append(SearchHit(message: message, snippet: try r[12].decode(String.self), rank: try r[13].decode(Double.self)))
                }
                return out
            }
            if phrase { return try await run(minID: nil) }
            var newest: Int64 = 0
            for try await n in try await client.query("SELECT COALESCE(MAX(id), 0) FROM message", logger: self.logger).decode(Int64.self) { newest = n }
            for window in Broker.recentWindows where newest > window {
                let recent = try await run(minID: newest - window)
                if recent.count >= limit { return recent }
            }
            return try await run(minID: nil)
        }
    }
}
