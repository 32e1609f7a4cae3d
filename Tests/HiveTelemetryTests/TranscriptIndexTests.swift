import Foundation
import GRDB
import HiveTelemetry
import HiveWire
import Testing

@Suite("Transcript search")
struct TranscriptIndexTests {
    let dir: URL
    init() throws {
        dir = FileManager.default.temporaryDirectory.appending(path: "hive-fts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    static let assistant = #"{"type":"assistant","message":{"id":"msg_1","role":"assistant","content":[{"type":"text","text":"The zebra migration is done"},{"type":"tool_use","id":"toolu_9","name":"Bash","input":{"command":"git push origin okapi-branch"}}],"usage":{"input_tokens":10}},"session_id":"s-1"}"#
    static let toolResult = #"{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_9","content":"remote: permission denied"}]},"session_id":"s-1"}"#
    static let system = #"{"type":"system","subtype":"init","tools":["Bash","zebra_tool"],"session_id":"s-1"}"#

    @Test("the text a person reads is indexed: what the agent said, its tools' names, inputs and results; not keys, ids, usage or the init line's tool list")
    func extraction() {
        let said = TranscriptText.of(kind: "stdout", body: Self.assistant)
        #expect(said.contains("The zebra migration is done") && said.contains("Bash") && said.contains("git push origin okapi-branch"))
        #expect(!said.contains("msg_1") && !said.contains("toolu_9") && !said.contains("s-1") && !said.contains("assistant"))
        #expect(TranscriptText.of(kind: "stdout", body: Self.toolResult) == "remote: permission denied")
        #expect(TranscriptText.of(kind: "stdout", body: Self.system) == "")
        #expect(TranscriptText.of(kind: "harness", body: "turn 3 from operator") == "turn 3 from operator")
        #expect(TranscriptText.of(kind: "stdout", body: "not json {") == "not json {")
        let huge = TranscriptText.of(kind: "stderr", body: String(repeating: "x", count: 100_000))
        #expect(huge.utf8.count == TranscriptText.maxBytes, "a huge event is indexed by its first part")
    }

    @Test("search finds words, phrases and prefixes in the transcript with the event's turn and a marked snippet; date filters apply; retention takes events out of the index")
    func search() throws {
        let store = try EventStore(path: dir.appending(path: "events.sqlite").path)
        let now = Date().timeIntervalSince1970
        try store.append(kind: "stdout", body: Self.system, turn: 1, at: now - 9 * 86400)
        try store.append(kind: "stdout", body: Self.assistant, turn: 1, at: now - 9 * 86400)
        let denied = try store.append(kind: "stdout", body: Self.toolResult, turn: 2, at: now - 60)
        let hits = try store.search(try SearchQuery.parse("zebra"), limit: 10)
        #expect(hits.count == 1 && hits[0].turn == 1 && hits[0].snippet.contains("[zebra]"), "the init line's zebra_tool is not a hit: \(hits)")
        #expect(try store.search(try SearchQuery.parse("\"permission denied\""), limit: 10).map(\.seq) == [denied.seq])
        #expect(try store.search(try SearchQuery.parse("oka*"), limit: 10).count == 1)
        #expect(try store.search(try SearchQuery.parse("zebra after:2d"), limit: 10).isEmpty)
        #expect(try store.search(try SearchQuery.parse("zebra from:iris"), limit: 10).isEmpty, "from: is about messages")
        #expect(try store.search(try SearchQuery.parse("session"), limit: 10).isEmpty, "keys are not text")
        #expect(try store.events(ofTurn: 1).count == 2)
        #expect(try store.sweep(olderThan: 7 * 86400, now: now) == 2)
        #expect(try store.search(try SearchQuery.parse("zebra"), limit: 10).isEmpty, "a swept event leaves the index")
        #expect(try store.search(try SearchQuery.parse("denied"), limit: 10).count == 1)
    }

    @Test("an events.sqlite written before the index (v1) is indexed when opened")
    func backfill() throws {
        let path = dir.appending(path: "old.sqlite").path
        do {
            let old = try DatabaseQueue(path: path)
            try old.write { db in
                try db.execute(sql: """
                    CREATE TABLE event (seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, turn INTEGER, kind TEXT NOT NULL, body TEXT NOT NULL);
                    CREATE INDEX event_at ON event(at);
                    CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
                    INSERT INTO grdb_migrations VALUES ('v1-events');
                    """)
                try db.execute(sql: "INSERT INTO event (at, turn, kind, body) VALUES (?, 4, 'stdout', ?)", arguments: [Date().timeIntervalSince1970, Self.assistant])
            }
        }
        let store = try EventStore(path: path)
        #expect(try store.search(try SearchQuery.parse("migration"), limit: 10).map(\.turn) == [4])
    }
}
