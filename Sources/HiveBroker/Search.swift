import Foundation
import GRDB
import HiveWire

/// Full-text search over messages (`message_fts`, FTS5; see Schema's v11): the terms ANDed, filters on
/// the row, best first by bm25, each with a snippet.
extension Broker {
    /// The newest messages searched first: ranking every match of a word found in most of a million
    /// bodies costs hundreds of milliseconds (measured on a million: a word in one message of twelve, 23 ms
    /// p50 over the newest 200,000, 3.6 ms over the newest 20,000). A window with fewer than `limit` hits
    /// widens to the next, and then to the whole history; a rare term costs three index lookups, each
    /// well under 1 ms. (A phrase's matches are found in the whole index before the window applies:
    /// a phrase in every message costs 60-70 ms whatever the window; docs/benchmarks.md.)
    public static let recentWindows: [Int64] = [20_000, 200_000]

    /// Messages matching `query`, best first; `party` (an agent's own search) keeps only messages it sent
    /// or received.
    public func search(_ query: SearchQuery, party: String?, limit: Int) throws -> [SearchHit] {
        try pool.read { db in
            var filters = ["message_fts MATCH ?"]
            var arguments: [any DatabaseValueConvertible] = [query.match]
            if let from = query.from { filters.append("m.sender = ?"); arguments.append(from) }
            if let to = query.to { filters.append("m.recipient = ?"); arguments.append(to) }
            if let after = query.after { filters.append("m.sent_at >= ?"); arguments.append(after) }
            if let before = query.before { filters.append("m.sent_at < ?"); arguments.append(before) }
            // What it sent, and what was handed to it (a message held back, by a budget or a stop, stays unseen).
            if let party { filters.append("(m.sender = ? OR (m.recipient = ? AND m.delivered_at IS NOT NULL))"); arguments += [party, party] }
            // bm25 of a phrase first counts the phrase's rows in the whole index (its weight), a scan that
            // costs about 50 ms on a million messages whatever the window (measured: finding the phrase in
            // the newest 20,000 takes 5 ms, ranking it 50): a query with a phrase lists newest first, in the
            // index's own order (ordered by the message's id instead, SQLite sorts every match: 50 ms again;
            // by the index's rowid, FTS5 walks backwards and stops at the limit: 0.2 ms).
            let phrase = query.terms.contains { if case .phrase = $0 { true } else { false } }
            func run(minID: Int64?) throws -> [SearchHit] {
                let window = minID.map { "AND message_fts.rowid >= \($0)" } ?? ""
                return try Row.fetchAll(db, sql: """
                    SELECT m.*, snippet(message_fts, 0, '[', ']', '…', 16) AS snip, \(phrase ? "0.0" : "bm25(message_fts)") AS score
                    FROM message_fts JOIN message m ON m.id = message_fts.rowid
                    WHERE \(filters.joined(separator: " AND ")) \(window)
                    ORDER BY \(phrase ? "message_fts.rowid DESC" : "score") LIMIT ?
                    """, arguments: StatementArguments(arguments + [limit])).map { row in
                    SearchHit(message: MessageRow(row: row).view, snippet: row["snip"], rank: row["score"])
                }
            }
            // Newest first already stops at the limit: no window needed (each would scan a no-hit phrase again).
            if phrase { return try run(minID: nil) }
            let newest = try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM message") ?? 0
            for window in Self.recentWindows where newest > window {
                let recent = try run(minID: newest - window)
                if recent.count >= limit { return recent }
            }
            return try run(minID: nil)
        }
    }
}
