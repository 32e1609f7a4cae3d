import Foundation
import GRDB
import Synchronization

/// One line of an agent's live stream: claude's stdout and stderr, and the harness's own notes.
public struct LiveEvent: Codable, Sendable, Equatable {
    /// Monotonic across the agent's whole life (survives restarts): a client that has seen `seq` n asks
    /// for everything after n and gets no gap and no duplicate.
    public var seq: Int64
    /// Unix seconds.
    public var at: Double
    /// The turn it belongs to, if any.
    public var turn: Int64?
    /// `stdout` (a stream-json line), `stderr`, or `harness` (turn start/end, state changes).
    public var kind: String
    public var body: String
    public init(seq: Int64, at: Double, turn: Int64?, kind: String, body: String) {
        self.seq = seq; self.at = at; self.turn = turn; self.kind = kind; self.body = body
    }
}

/// `<harness>/events.sqlite`: every live event, persisted, plus fan-out to live subscribers.
public final class EventStore: Sendable {
    private let db: DatabaseQueue
    private let subscribers = Mutex([UUID: AsyncStream<LiveEvent>.Continuation]())

    public init(path: String) throws {
        var config = Configuration()
        config.busyMode = .timeout(5)
        db = try DatabaseQueue(path: path, configuration: config)
        try db.writeWithoutTransaction { db in
            _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        var m = DatabaseMigrator()
        m.registerMigration("v1-events") { db in
            try db.execute(sql: """
                CREATE TABLE event (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    at REAL NOT NULL,
                    turn INTEGER,
                    kind TEXT NOT NULL,
                    body TEXT NOT NULL
                );
                CREATE INDEX event_at ON event(at);
                """)
        }
        Self.registerTranscriptIndex(&m)
        try m.migrate(db)
    }

    /// Stores an event and hands it to every live subscriber.
    @discardableResult
    public func append(kind: String, body: String, turn: Int64?, at: Double = Date().timeIntervalSince1970) throws -> LiveEvent {
        let seq = try db.write { db -> Int64 in
            try db.cachedStatement(sql: "INSERT INTO event (at, turn, kind, body) VALUES (?, ?, ?, ?)")
                .execute(arguments: [at, turn, kind, body])
            let seq = db.lastInsertedRowID
            try Self.index(db, seq: seq, kind: kind, body: body)
            return seq
        }
        let event = LiveEvent(seq: seq, at: at, turn: turn, kind: kind, body: body)
        for c in subscribers.withLock({ Array($0.values) }) { c.yield(event) }
        return event
    }

    /// Events after `seq`, oldest first, at most `limit`.
    public func events(after seq: Int64, limit: Int = 500) throws -> [LiveEvent] {
        try db.read { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM event WHERE seq > ? ORDER BY seq LIMIT ?"), arguments: [seq, limit]).map {
                LiveEvent(seq: $0["seq"], at: $0["at"], turn: $0["turn"], kind: $0["kind"], body: $0["body"])
            }
        }
    }

    /// A read of the store (the transcript index's queries).
    func read<T>(_ body: (Database) throws -> T) throws -> T { try db.read(body) }

    /// The newest `seq`, or 0.
    public func lastSeq() throws -> Int64 {
        try db.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM event") ?? 0 }
    }

    /// Live events from now on; subscribe first, then read the backlog with ``events(after:limit:)``,
    /// and drop live events whose `seq` the backlog already had.
    public func subscribe() -> AsyncStream<LiveEvent> {
        let (stream, continuation) = AsyncStream<LiveEvent>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        let id = UUID()
        subscribers.withLock { $0[id] = continuation }
        continuation.onTermination = { [weak self] _ in self?.subscribers.withLock { _ = $0.removeValue(forKey: id) } }
        return stream
    }

    /// Deletes events older than `window` seconds in small batches. Returns how many went.
    public func sweep(olderThan window: Double, now: Double = Date().timeIntervalSince1970, batch: Int = 1000) throws -> Int {
        try Retention.sweep(db, table: "event", column: "at", cutoff: now - window, batch: batch)
    }
}

/// Batched deletes by age, shared by the telemetry stores.
enum Retention {
    static func sweep(_ db: DatabaseQueue, table: String, column: String, cutoff: Double, batch: Int) throws -> Int {
        var total = 0
        while true {
            let n = try db.write { db -> Int in
                try db.execute(sql: "DELETE FROM \(table) WHERE rowid IN (SELECT rowid FROM \(table) WHERE \(column) < ? LIMIT ?)",
                               arguments: [cutoff, batch])
                return db.changesCount
            }
            total += n
            if n < batch { return total }
        }
    }
}
