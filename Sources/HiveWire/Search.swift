import Foundation

/// A search as a person types it: words (each must appear), `"a phrase"`, `prefix*`, and filters
/// `from:NAME`, `to:NAME`, `after:WHEN`, `before:WHEN` (WHEN is `2026-12-01`, `6h`, `2d` ago, or unix
/// seconds). Parsed here, at the edge, into the parts the store needs; the words become an FTS5 query in
/// which every term is a quoted string, so nothing typed can be FTS5 syntax (`NEAR`, `OR`, columns).
public struct SearchQuery: Sendable, Equatable {
    public enum Term: Sendable, Equatable {
        case word(String)
        case phrase([String])
        case prefix(String)
    }
    public var terms: [Term] = []
    public var from: String?
    public var to: String?
    public var after: Double?
    public var before: Double?

    public static let maxBytes = 500
    /// The most results a search returns.
    public static let maxResults = 100
    public static let maxTerms = 16

    /// The FTS5 MATCH expression: the terms ANDed, each quoted.
    public var match: String {
        func quoted(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        return terms.map { term in
            switch term {
            case .word(let w): return quoted(w)
            case .phrase(let words): return quoted(words.joined(separator: " "))
            case .prefix(let p): return quoted(p) + "*"
            }
        }.joined(separator: " AND ")
    }

    public init(terms: [Term] = [], from: String? = nil, to: String? = nil, after: Double? = nil, before: Double? = nil) {
        self.terms = terms; self.from = from; self.to = to; self.after = after; self.before = before
    }

    /// Reads what was typed; a query with no words, an unclosed quote, a bad filter or too much is refused
    /// with the reason.
    public static func parse(_ text: String, now: Double = Date().timeIntervalSince1970) throws(RequestError) -> SearchQuery {
        guard text.utf8.count <= maxBytes else { throw RequestError("the query is \(text.utf8.count) bytes; at most \(maxBytes)") }
        var q = SearchQuery()
        var rest = Substring(text)
        func words(_ s: Substring) -> [String] {
            // Letters and digits make words (what the index's unicode61 tokenizer keeps); the rest separates
            // them. FTS5 folds case and accents in the query as in the index, so nothing more is done here.
            s.split { !($0.isLetter || $0.isNumber) }.map { String($0).lowercased() }
        }
        while let start = rest.firstIndex(where: { !$0.isWhitespace }) {
            rest = rest[start...]
            if rest.first == "\"" {
                let body = rest.dropFirst()
                guard let end = body.firstIndex(of: "\"") else { throw RequestError("a quote is not closed: \(text.prefix(80))") }
                let phrase = words(body[..<end])
                if !phrase.isEmpty { q.terms.append(phrase.count == 1 ? .word(phrase[0]) : .phrase(phrase)) }
                rest = body[body.index(after: end)...]
                continue
            }
            let token = rest.prefix { !$0.isWhitespace }
            rest = rest[token.endIndex...]
            if let colon = token.firstIndex(of: ":"), ["from", "to", "after", "before"].contains(token[..<colon].lowercased()) {
                let key = token[..<colon].lowercased(), value = String(token[token.index(after: colon)...])
                switch key {
                case "from", "to":
                    guard Recipient.isPartyName(value) else { throw RequestError("\(key): '\(value.prefix(64))' is not an agent name, operator or system") }
                    if key == "from" { q.from = value } else { q.to = value }
                default:
                    guard let t = when(value, now: now) else { throw RequestError("\(key): '\(value.prefix(64))' is not a date (2026-12-01), an age (6h, 2d) or unix seconds") }
                    if key == "after" { q.after = t } else { q.before = t }
                }
                continue
            }
            if token.hasSuffix("*"), let word = words(token.dropLast()).last, words(token.dropLast()).count == 1 {
                // A short prefix matches most of the index: at least 3 characters, and 2 prefixes a query.
                guard word.count >= 3 else { throw RequestError("a prefix needs at least 3 characters, not '\(word.prefix(10))*'") }
                guard q.terms.filter({ if case .prefix = $0 { return true } else { return false } }).count < 2 else {
                    throw RequestError("at most 2 prefixes (word*) in a query")
                }
                q.terms.append(.prefix(word))
            } else {
                q.terms += words(token).map(Term.word)
            }
        }
        guard !q.terms.isEmpty else { throw RequestError("give at least one word to search for") }
        guard q.terms.count <= maxTerms else { throw RequestError("at most \(maxTerms) words") }
        return q
    }

    /// `2026-12-01` (midnight, host time zone), `6h`/`2d`/`30m` ago, or unix seconds.
    static func when(_ s: String, now: Double) -> Double? {
        if let unix = Double(s), unix.isFinite, unix >= 0 { return unix }
        if let unit = s.last, let n = Double(s.dropLast()), n >= 0, n.isFinite {
            switch unit {
            case "m": return now - n * 60
            case "h": return now - n * 3600
            case "d": return now - n * 86400
            default: break
            }
        }
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd"
        f.locale = Locale(identifier: "en_US_POSIX")
        return f.date(from: s)?.timeIntervalSince1970
    }
}

extension Recipient {
    /// Whether `s` names a party a message can be from or to: an agent, `operator`, `manager` or `system`.
    public static func isPartyName(_ s: String) -> Bool {
        s == "operator" || s == "system" || (try? AgentName(s)) != nil
    }
}

/// `search`: messages matching a query, best first (bm25), with a snippet each. On an agent's socket only
/// messages it sent or received (or broadcast to it); on the admin and web sockets, all.
public struct SearchCommand: HiveCommand {
    public static let cmd = "search"
    public var query: String
    public var limit: Int?
    public init(query: String, limit: Int? = nil) { self.query = query; self.limit = limit }
    public struct Reply: Codable, Sendable, Equatable {
        public var hits: [SearchHit]
        public init(hits: [SearchHit]) { self.hits = hits }
    }
}

public struct SearchHit: Codable, Sendable, Equatable {
    public var message: MessageView
    /// The matching part of the body, matches between `[` and `]`.
    public var snippet: String
    /// bm25: lower is better. 0 for every hit of a query with a phrase, which lists newest first.
    public var rank: Double
    public init(message: MessageView, snippet: String, rank: Double) { self.message = message; self.snippet = snippet; self.rank = rank }
}

/// One event of an agent's turn transcript that matches a search (its own `events.sqlite`, searched by its
/// harness: the agent's `search` tool with `in: transcripts`, the dashboard, `hive search --transcripts`).
public struct TranscriptHit: Codable, Sendable, Equatable {
    /// Whose transcript (filled in by whoever asked several agents; an agent's own answer leaves it out).
    @Nullable public var agent: String?
    /// The event's place in the agent's stream.
    public var seq: Int64
    public var at: Double
    /// The turn it belongs to, if any.
    @Nullable public var turn: Int64?
    /// `stdout` (claude's stream), `stderr`, or `harness`.
    public var kind: String
    /// The matching part of the event's text, matches between `[` and `]`.
    public var snippet: String
    /// bm25 within that agent's transcript: lower is better (0 for a query with a phrase, newest first).
    public var rank: Double
    public init(agent: String? = nil, seq: Int64, at: Double, turn: Int64?, kind: String, snippet: String, rank: Double) {
        self.agent = agent; self.seq = seq; self.at = at; self.turn = turn; self.kind = kind; self.snippet = snippet; self.rank = rank
    }
}

/// What an agent's page server answers to `/search`.
public struct TranscriptSearchReply: Codable, Sendable, Equatable {
    public var hits: [TranscriptHit]
    public init(hits: [TranscriptHit]) { self.hits = hits }
}

/// Transcript hits from several agents, newest first, and the agents that could not be searched and why.
public struct TranscriptSearchResult: Codable, Sendable, Equatable {
    public var hits: [TranscriptHit]
    public var unreachable: [String: String]
    public init(hits: [TranscriptHit], unreachable: [String: String]) { self.hits = hits; self.unreachable = unreachable }
}
