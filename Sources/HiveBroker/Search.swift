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
            func run(minID: Int64?) throws -> [SearchHit] {
                let window = minID.map { "AND message_fts.rowid >= \($0)" } ?? ""
                return try Row.fetchAll(db, sql: """
                    SELECT m.*, snippet(message_fts, 0, '[', ']', '…', 16) AS snip, bm25(message_fts) AS score
                    FROM message_fts JOIN message m ON m.id = message_fts.rowid
                    WHERE \(filters.joined(separator: " AND ")) \(window)
                    ORDER BY score LIMIT ?
                    """, arguments: StatementArguments(arguments + [limit])).map { row in
                    SearchHit(message: MessageRow(row: row).view, snippet: row["snip"], rank: row["score"])
                }
            }
            let newest = try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM message") ?? 0
            if query.terms.contains(where: { if case .phrase = $0 { true } else { false } }),
               let verified = try phraseByWords(query, arguments: Array(arguments.dropFirst()), filters: Array(filters.dropFirst()),
                                                newest: newest, limit: limit, db: db) {
                return verified
            }
            for window in Self.recentWindows where newest > window {
                let recent = try run(minID: newest - window)
                if recent.count >= limit { return recent }
            }
            return try run(minID: nil)
        }
    }

    /// Candidates a phrase query checks by its words before it asks FTS5 for the phrase itself.
    public static let phraseCandidates = 200

    /// A phrase by its words: FTS5 finds a phrase's matches in the whole index before a rowid window
    /// applies (a phrase of words in every message cost 68 ms p50 on a million whatever the window), while
    /// its words alone are found within the window in a few. So the words are searched within each window,
    /// best first by their bm25, and each candidate's body is checked for the phrase (the index's own
    /// tokenizing: letters and digits, case and accents folded). Nil when the candidates run out before the
    /// limit fills (a phrase rarer than its words): then FTS5's phrase query answers, as before.
    func phraseByWords(_ query: SearchQuery, arguments: [any DatabaseValueConvertible], filters: [String], newest: Int64,
                       limit: Int, db: Database) throws -> [SearchHit]? {
        var loose = query
        loose.terms = query.terms.flatMap { term -> [SearchQuery.Term] in
            if case .phrase(let words) = term { return words.map { .word($0) } }
            return [term]
        }
        let phrases = query.terms.compactMap { term -> [String]? in if case .phrase(let w) = term { w } else { nil } }
        let candidates = Self.phraseCandidates
        for window in Self.recentWindows where newest > window {
            let rows = try Row.fetchAll(db, sql: """
                SELECT m.*, snippet(message_fts, 0, '[', ']', '…', 16) AS snip, bm25(message_fts) AS score
                FROM message_fts JOIN message m ON m.id = message_fts.rowid
                WHERE message_fts MATCH ? \(filters.map { "AND " + $0 }.joined(separator: " ")) AND message_fts.rowid >= ?
                ORDER BY score LIMIT ?
                """, arguments: StatementArguments([loose.match] + arguments + [newest - window, candidates]))
            let hits = rows.lazy.filter { row in
                let words = SearchQuery.indexWords(row["body"] as String)
                return phrases.allSatisfy { Self.contains(words, $0) }
            }.prefix(limit).map { row in SearchHit(message: MessageRow(row: row).view, snippet: row["snip"], rank: row["score"]) }
            if hits.count >= limit { return Array(hits) }
            if rows.count == candidates { return nil } // many candidates, few phrases: FTS5's phrase query
        }
        return nil
    }

    /// Whether `words` holds `phrase` as consecutive words.
    static func contains(_ words: [String], _ phrase: [String]) -> Bool {
        guard !phrase.isEmpty, words.count >= phrase.count else { return false }
        return (0...(words.count - phrase.count)).contains { i in words[i..<(i + phrase.count)].elementsEqual(phrase) }
    }
}
