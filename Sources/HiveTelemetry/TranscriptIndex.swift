import Foundation
import GRDB
import HiveWire

/// Full-text search over an agent's turn transcript (`event_fts`, FTS5 in its own `events.sqlite`).
///
/// What is indexed is the text a person reads, not the stream's JSON: what the agent and its tools said
/// (assistant text, tool names and inputs, tool results, the result), the harness's notes and stderr.
/// Keys, ids, usage counts, signatures and the `system` lines (the tool and server lists of every turn's
/// start) are left out: they would match every search for "type" or "session". The index keeps its own
/// copy of that text (an FTS5 table with content), kept in step by the store: an event's text goes in with
/// it, and a trigger takes it out when retention deletes the event.
public enum TranscriptText {
    /// Most text indexed per event: a tool result of megabytes is found by its first part.
    public static let maxBytes = 32 * 1024

    /// Keys whose values are never text for a person.
    static let skipped: Set<String> = ["type", "id", "uuid", "session_id", "parent_tool_use_id", "tool_use_id", "model", "role",
                                       "stop_reason", "stop_sequence", "signature", "usage", "modelUsage", "cache_creation",
                                       "service_tier", "rate_limit_info", "permission_denials", "subtype", "terminal_reason"]

    /// The searchable text of one event.
    public static func of(kind: String, body: String) -> String {
        guard kind == "stdout", body.first == "{",
              let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
            return clipped(body)
        }
        if let type = object["type"] as? String, type == "system" || type == "rate_limit_event" || type == "stream_event" { return "" }
        var parts: [String] = []
        var bytes = 0
        func walk(_ value: Any) {
            guard bytes < maxBytes else { return }
            switch value {
            case let s as String where !s.isEmpty:
                parts.append(s)
                bytes += s.utf8.count
            case let a as [Any]:
                a.forEach(walk)
            case let d as [String: Any]:
                for key in d.keys.sorted() where !skipped.contains(key) { walk(d[key]!) }
            default:
                break
            }
        }
        walk(object)
        return clipped(parts.joined(separator: "\n"))
    }

    static func clipped(_ s: String) -> String {
        s.utf8.count <= maxBytes ? s : String(decoding: s.utf8.prefix(maxBytes), as: UTF8.self)
    }
}

extension EventStore {
    /// The index's migration: the table, the trigger that follows retention, and every event already kept.
    static func registerTranscriptIndex(_ m: inout DatabaseMigrator) {
        m.registerMigration("v2-transcript-search") { db in
            try db.execute(sql: """
                CREATE VIRTUAL TABLE event_fts USING fts5(text, tokenize='unicode61 remove_diacritics 2', prefix='2 3');
                CREATE TRIGGER event_fts_delete AFTER DELETE ON event BEGIN
                    DELETE FROM event_fts WHERE rowid = old.seq;
                END;
                CREATE INDEX event_turn ON event(turn, seq);
                """)
            let rows = try Row.fetchCursor(db, sql: "SELECT seq, kind, body FROM event")
            let insert = try db.makeStatement(sql: "INSERT INTO event_fts(rowid, text) VALUES (?, ?)")
            while let row = try rows.next() {
                let text = TranscriptText.of(kind: row["kind"], body: row["body"])
                if !text.isEmpty { try insert.execute(arguments: [row["seq"] as Int64, text]) }
            }
        }
    }

    /// Indexes one event (in the transaction that stores it).
    static func index(_ db: Database, seq: Int64, kind: String, body: String) throws {
        let text = TranscriptText.of(kind: kind, body: body)
        guard !text.isEmpty else { return }
        try db.cachedStatement(sql: "INSERT INTO event_fts(rowid, text) VALUES (?, ?)").execute(arguments: [seq, text])
    }

    /// The newest events searched first, as for messages: ranking every match of a common word costs
    /// tens of milliseconds (80 ms p95 for a word in a quarter of 200,000 events), its matches among the
    /// newest 20,000 a few. A window with fewer hits than asked widens to the next, then the whole store.
    public static let recentWindows: [Int64] = [20_000, 200_000]

    /// Events matching `query` (its words, phrases, prefixes and `after:`/`before:`; `from:`/`to:` are
    /// about messages and match no event), best first by bm25 (a query with a phrase, newest first: bm25
    /// of a phrase scans the whole index), with snippets.
    public func search(_ query: SearchQuery, limit: Int) throws -> [TranscriptHit] {
        if query.from != nil || query.to != nil { return [] }
        let phrase = query.terms.contains { if case .phrase = $0 { true } else { false } }
        let limit = min(limit, SearchQuery.maxResults)
        return try read { db in
            var filters = ["event_fts MATCH ?"]
            var arguments: [any DatabaseValueConvertible] = [query.match]
            if let after = query.after { filters.append("e.at >= ?"); arguments.append(after) }
            if let before = query.before { filters.append("e.at < ?"); arguments.append(before) }
            func run(minSeq: Int64?) throws -> [TranscriptHit] {
                try Row.fetchAll(db, sql: """
                    SELECT e.seq, e.at, e.turn, e.kind, snippet(event_fts, 0, '[', ']', '…', 16) AS snip,
                           \(phrase ? "0.0" : "bm25(event_fts)") AS score
                    FROM event_fts JOIN event e ON e.seq = event_fts.rowid
                    WHERE \(filters.joined(separator: " AND ")) \(minSeq.map { "AND event_fts.rowid >= \($0)" } ?? "")
                    ORDER BY \(phrase ? "event_fts.rowid DESC" : "score") LIMIT ?
                    """, arguments: StatementArguments(arguments + [limit])).map { row in
                    TranscriptHit(seq: row["seq"], at: row["at"], turn: row["turn"], kind: row["kind"], snippet: row["snip"], rank: row["score"])
                }
            }
            if phrase { return try run(minSeq: nil) } // newest first stops at the limit by itself
            let newest = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM event") ?? 0
            for window in Self.recentWindows where newest > window {
                let recent = try run(minSeq: newest - window)
                if recent.count >= limit { return recent }
            }
            return try run(minSeq: nil)
        }
    }

    /// Every event of turn `turn`, oldest first, at most `limit`.
    public func events(ofTurn turn: Int64, limit: Int = 2000) throws -> [LiveEvent] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM event WHERE turn = ? ORDER BY seq LIMIT ?", arguments: [turn, limit]).map {
                LiveEvent(seq: $0["seq"], at: $0["at"], turn: $0["turn"], kind: $0["kind"], body: $0["body"])
            }
        }
    }
}
