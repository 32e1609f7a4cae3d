import Foundation
import HiveWire
import Logging
import PostgresNIO
import Synchronization

/// The broker's messages on PostgreSQL, for a hive whose nodes share one database (issue 15; first
/// slice: agents, send, recv with wake across nodes, ack).
///
/// One node is one `PostgresBroker`: one connection pool (never a connection per agent) and one more
/// connection that LISTENs on `hive_inbox`. A send inserts its row and `pg_notify`s the recipient in the
/// same transaction, so the notification leaves when the row is committed and never before; every node
/// listening wakes its own parked receivers of that agent, which then claim the message with
/// `FOR UPDATE SKIP LOCKED` (two nodes never hand out the same message). No polling: a parked receiver
/// waits on the notification or its own timeout. While the listening connection is down (a database
/// restart), every parked receiver is woken when it is back, to look again for what it missed.
public final class PostgresBroker: Sendable {
    public let node: String
    let client: PostgresClient
    let logger: Logger
    let wakes = Wakes()
    /// Sends of this node waiting to be written together (see ``write(_:)``).
    let sends = SendBatcher()
    private let tasks = Mutex<[Task<Void, Never>]>([])
    /// Unix seconds; tests inject a clock.
    let clock: @Sendable () -> Double

    public static let channel = "hive_inbox"

    /// Connects to the database at `host:port` as `user` and starts the pool and the listener;
    /// `migrate()` before first use.
    public init(host: String, port: Int, user: String, password: String?, database: String, node: String, logger: Logger,
                clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        var config = PostgresClient.Configuration(host: host, port: port, username: user, password: password, database: database, tls: .disable)
        config.options.maximumConnections = 16
        config.options.connectTimeout = .seconds(5)
        self.client = PostgresClient(configuration: config, backgroundLogger: logger)
        self.node = node
        self.logger = logger
        self.clock = clock
        let client = self.client
        let runner = Task { await client.run() }
        let listener = Task { [wakes] in await Self.listen(client: client, wakes: wakes, logger: logger) }
        tasks.withLock { $0 = [runner, listener] }
        sends.writer = { [weak self] batch in await self?.write(batch) ?? batch.map { _ in .failure(BrokerFailure("the node is stopping")) } }
    }

    /// Stops the listener and the pool; parked receivers return empty.
    public func shutdown() {
        wakes.releaseAll()
        tasks.withLock { $0.forEach { $0.cancel() } }
    }

    /// LISTENs on one connection of the pool for as long as the broker lives, again after every loss
    /// (backing off to 1 s), and wakes every parked receiver after a loss: a notification sent while
    /// nobody listened is gone, the message it announced is not.
    static func listen(client: PostgresClient, wakes: Wakes, logger: Logger) async {
        var backoff = Duration.milliseconds(50)
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.channel) { notifications in
                        backoff = .milliseconds(50)
                        wakes.wakeAll() // whatever was sent while this node did not listen
                        for try await n in notifications { wakes.wake(n.payload) }
                    }
                }
            } catch {
                if Task.isCancelled { break }
                logger.warning("listening for sends stopped, again in \(backoff): \(error)")
            }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(1))
        }
    }

    /// Creates or upgrades the schema, one node at a time (an advisory lock held for the transaction).
    public func migrate() async throws {
        let logger = self.logger, now = clock()
        try await transaction { c in
            try await c.query("SELECT pg_advisory_xact_lock(4242)", logger: logger)
            try await c.query("CREATE TABLE IF NOT EXISTS hive_migrations (identifier TEXT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)", logger: logger)
            var applied: Set<String> = []
            for try await id in try await c.query("SELECT identifier FROM hive_migrations", logger: logger).decode(String.self) { applied.insert(id) }
            for (id, statements) in PostgresSchema.migrations where !applied.contains(id) {
                for sql in statements { try await c.query(PostgresQuery(unsafeSQL: sql), logger: logger) }
                try await c.query("INSERT INTO hive_migrations (identifier, applied_at) VALUES (\(id), \(now))", logger: logger)
            }
        }
    }

    /// Longest one operation waits: with the database unreachable the pool keeps a request queued while it
    /// retries (up to 15 s before its circuit breaker trips), and a send must fail clearly instead.
    public static let operationTimeout: Duration = .seconds(5)

    /// `body` in a transaction, bounded by ``operationTimeout``; a refusal of ours thrown inside comes out
    /// as itself, not wrapped.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await bounded {
            do { return try await self.client.withTransaction(logger: self.logger) { try await body($0) } } catch let e as PostgresTransactionError {
                if let ours = e.closureError as? BrokerFailure { throw ours }
                throw e
            }
        }
    }

    /// `operation`, or a clear error once ``operationTimeout`` has passed (the operation is cancelled).
    func bounded<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await operation() }
            group.addTask { try await Task.sleep(for: Self.operationTimeout); return nil }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw BrokerFailure("the database did not answer within \(Self.operationTimeout) (is it down or unreachable?)")
            }
            return value
        }
    }

    public func register(_ name: AgentName) async throws {
        let now = clock()
        try await client.query("INSERT INTO agent (name, created_at, node) VALUES (\(name.rawValue), \(now), \(node)) ON CONFLICT (name) DO NOTHING", logger: logger)
    }

    /// Stores a message for `to` and announces it to every node, in one transaction.
    @discardableResult
    public func send(from: String, to: AgentName, body: String, inReplyTo: Int64? = nil) async throws -> Int64 {
        guard !body.isEmpty else { throw BrokerFailure("a message needs a body") }
        guard body.utf8.count <= WireLimits.maxBodyBytes else { throw BrokerFailure("the body is \(body.utf8.count) bytes; at most \(WireLimits.maxBodyBytes)") }
        return try await sends.submit(PendingSend(from: from, to: to.rawValue, body: body, at: clock(), inReplyTo: inReplyTo))
    }

    /// Writes a batch of sends: alone, one statement (one round trip, its own transaction: the recipient
    /// checked, the row stored, the notification queued for commit); several, one transaction with one
    /// commit and one notification per recipient. A transaction that notifies takes PostgreSQL's global
    /// notify lock at commit, so commits that notify are serialised: one send per transaction reached 24 %
    /// of a raw insert loop's rate with 16 senders (docs/benchmarks.md); sends waiting meanwhile go together.
    func write(_ batch: [PendingSend]) async -> [Result<Int64, any Error>] {
        do {
            return try await bounded { [client, logger] in
                if batch.count == 1, let one = batch.first {
                    let rows = try await client.query("""
                        WITH known AS (SELECT name FROM agent WHERE name = \(one.to) AND destroyed_at IS NULL),
                             stored AS (INSERT INTO message (sender, recipient, body, sent_at, in_reply_to)
                                        SELECT \(one.from), name, \(one.body), \(one.at), \(one.inReplyTo) FROM known RETURNING id, recipient)
                        SELECT id, pg_notify(\(Self.channel), recipient) FROM stored
                        """, logger: logger)
                    var id: Int64?
                    // The second column is pg_notify's void: only the id is read.
                    for try await row in rows { id = try row.makeRandomAccess()[0].decode(Int64.self) }
                    return [id.map { .success($0) } ?? .failure(BrokerFailure("no agent named '\(one.to)'"))]
                }
                return try await client.withTransaction(logger: logger) { c in
                    var known: Set<String> = []
                    let names = Array(Set(batch.map(\.to)))
                    for try await name in try await c.query("SELECT name FROM agent WHERE name = ANY(\(names)) AND destroyed_at IS NULL", logger: logger).decode(String.self) {
                        known.insert(name)
                    }
                    // Every row in one INSERT, in the batch's order: ids are drawn as rows are inserted, so the
                    // returned ids, sorted, are the sends' in order.
                    let stored = batch.filter { known.contains($0.to) }
                    var ids: [Int64] = []
                    if !stored.isEmpty {
                        let froms = stored.map(\.from), tos = stored.map(\.to), bodies = stored.map(\.body), ats = stored.map(\.at)
                        let replies = stored.map { $0.inReplyTo ?? -1 }
                        for try await v in try await c.query("""
                            INSERT INTO message (sender, recipient, body, sent_at, in_reply_to)
                            SELECT f, t, b, a, NULLIF(r, -1)
                            FROM unnest(\(froms)::text[], \(tos)::text[], \(bodies)::text[], \(ats)::float8[], \(replies)::int8[])
                                 WITH ORDINALITY AS u(f, t, b, a, r, n)
                            ORDER BY n
                            RETURNING id
                            """, logger: logger).decode(Int64.self) { ids.append(v) }
                    }
                    ids.sort()
                    var next = ids.makeIterator()
                    let results: [Result<Int64, any Error>] = batch.map { send in
                        guard known.contains(send.to), let id = next.next() else { return .failure(BrokerFailure("no agent named '\(send.to)'")) }
                        return .success(id)
                    }
                    for name in Set(stored.map(\.to)) { try await c.query("SELECT pg_notify(\(Self.channel), \(name))", logger: logger) }
                    return results
                }
            }
        } catch {
            return batch.map { _ in .failure(error) }
        }
    }

    /// A message as `recv` hands it out.
    public struct Delivered: Sendable, Equatable {
        public var id: Int64
        public var from: String
        public var body: String
        public var sentAt: Double
        public var redelivered: Bool
    }

    /// Claims up to `max` of the agent's pending messages, oldest first; with none, parks until a send
    /// for it is announced or `wait` passes.
    public func recv(_ agent: AgentName, max: Int, wait: Duration) async throws -> [Delivered] {
        let deadline = ContinuousClock.now + wait
        var parked = false
        while true {
            // The generation before the claim: a send committed after it wakes the wait below.
            let seen = wakes.generation(agent.rawValue)
            let got: [Delivered]
            do { got = try await claim(agent, max: max) } catch {
                // A receiver already parked outlives a database restart: it looks again when this node
                // listens again (every receiver is woken then), or each second until its time is up.
                guard parked else { throw error }
                let left = deadline - ContinuousClock.now
                guard left > .zero, !wakes.released else { return [] }
                await wakes.wait(agent.rawValue, after: seen, timeout: min(left, .seconds(1)))
                continue
            }
            if !got.isEmpty { return got }
            let left = deadline - ContinuousClock.now
            guard left > .zero, !wakes.released else { return [] }
            parked = true
            await wakes.wait(agent.rawValue, after: seen, timeout: left)
        }
    }

    func claim(_ agent: AgentName, max: Int) async throws -> [Delivered] {
        let now = clock()
        let limit = Swift.max(1, Swift.min(max, 100))
        let name = agent.rawValue
        return try await bounded { [client, logger] in
            let rows = try await client.query("""
                UPDATE message SET delivered_at = \(now)
                WHERE id IN (SELECT id FROM message WHERE recipient = \(name) AND delivered_at IS NULL AND acked_at IS NULL
                             ORDER BY id LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING id, sender, body, sent_at, redelivered
                """, logger: logger)
            var out: [Delivered] = []
            for try await (id, from, body, sentAt, redelivered) in rows.decode((Int64, String, String, Double, Bool).self) {
                out.append(Delivered(id: id, from: from, body: body, sentAt: sentAt, redelivered: redelivered))
            }
            return out.sorted { $0.id < $1.id }
        }
    }

    /// Acks messages handed to `agent`; returns how many were acked.
    @discardableResult
    public func ack(_ agent: AgentName, ids: [Int64]) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        let now = clock()
        let name = agent.rawValue
        return try await bounded { [client, logger] in
            let rows = try await client.query("""
                UPDATE message SET acked_at = \(now)
                WHERE recipient = \(name) AND id = ANY(\(ids)) AND delivered_at IS NOT NULL AND acked_at IS NULL
                RETURNING id
                """, logger: logger)
            var n = 0
            for try await _ in rows { n += 1 }
            return n
        }
    }

    /// Puts every message handed to `agent` but not acked back to pending, flagged redelivered.
    @discardableResult
    public func requeueInflight(_ agent: AgentName) async throws -> Int {
        let rows = try await client.query("""
            UPDATE message SET delivered_at = NULL, redelivered = true
            WHERE recipient = \(agent.rawValue) AND delivered_at IS NOT NULL AND acked_at IS NULL
            RETURNING id
            """, logger: logger)
        var n = 0
        for try await _ in rows { n += 1 }
        if n > 0 { try await client.query("SELECT pg_notify(\(Self.channel), \(agent.rawValue))", logger: logger) }
        return n
    }
}

/// A refusal of the PostgreSQL store, in a sentence.
public struct BrokerFailure: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The PostgreSQL schema, versioned by name like the SQLite one (each applied once, in order).
enum PostgresSchema {
    static let migrations: [(String, [String])] = [
        ("v1-agents-and-messages", [
            """
            CREATE TABLE agent (
                name TEXT PRIMARY KEY,
                created_at DOUBLE PRECISION NOT NULL,
                destroyed_at DOUBLE PRECISION,
                node TEXT
            )
            """,
            """
            CREATE TABLE message (
                id BIGSERIAL PRIMARY KEY,
                sender TEXT NOT NULL,
                recipient TEXT NOT NULL,
                body TEXT NOT NULL,
                sent_at DOUBLE PRECISION NOT NULL,
                delivered_at DOUBLE PRECISION,
                acked_at DOUBLE PRECISION,
                in_reply_to BIGINT,
                broadcast BOOLEAN NOT NULL DEFAULT false,
                redelivered BOOLEAN NOT NULL DEFAULT false
            )
            """,
            "CREATE INDEX message_pending ON message (recipient, id) WHERE delivered_at IS NULL AND acked_at IS NULL",
            "CREATE INDEX message_inflight ON message (recipient) WHERE delivered_at IS NOT NULL AND acked_at IS NULL",
        ]),
    ]
}

/// Parked receivers of one node, woken by agent name: a generation per agent that every announced send
/// raises, and the continuations waiting for it to move.
final class Wakes: Sendable {
    private struct State {
        var generation: [String: UInt64] = [:]
        var waiting: [String: [UUID: CheckedContinuation<Void, Never>]] = [:]
        var released = false
    }
    private let state = Mutex(State())

    var released: Bool { state.withLock { $0.released } }

    func generation(_ agent: String) -> UInt64 { state.withLock { $0.generation[agent, default: 0] } }

    /// A send for `agent` was announced.
    func wake(_ agent: String) {
        let waiting = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.generation[agent, default: 0] &+= 1
            return Array((s.waiting.removeValue(forKey: agent) ?? [:]).values)
        }
        waiting.forEach { $0.resume() }
    }

    /// Every parked receiver looks again (the listener was down and is back).
    func wakeAll() {
        let agents = state.withLock { Array($0.waiting.keys) + Array($0.generation.keys) }
        Set(agents).forEach(wake)
    }

    /// Ends every wait for good (the node is stopping).
    func releaseAll() {
        let all = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.released = true
            defer { s.waiting = [:] }
            return s.waiting.values.flatMap { $0.values }
        }
        all.forEach { $0.resume() }
    }

    /// Returns when `agent`'s generation moves past `seen`, or after `timeout`.
    func wait(_ agent: String, after seen: UInt64, timeout: Duration) async {
        let id = UUID()
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            self?.resume(agent, id)
        }
        defer { timer.cancel() }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.released || s.generation[agent, default: 0] != seen { return true }
                s.waiting[agent, default: [:]][id] = c
                return false
            }
            if now { c.resume() }
        }
    }

    private func resume(_ agent: String, _ id: UUID) {
        state.withLock { $0.waiting[agent]?.removeValue(forKey: id) }?.resume()
    }
}

/// A send waiting to be written.
struct PendingSend: Sendable {
    var from: String
    var to: String
    var body: String
    var at: Double
    var inReplyTo: Int64?
}

/// Group commit for one node's sends: the first send writes at once; sends that arrive while a write is
/// in flight wait and are written together by the next one (at most `maxBatch`).
final class SendBatcher: Sendable {
    static let maxBatch = 64
    private struct State {
        var queue: [(PendingSend, CheckedContinuation<Int64, any Error>)] = []
        var writing = false
    }
    private let state = Mutex(State())
    private let writerBox = Mutex<(@Sendable ([PendingSend]) async -> [Result<Int64, any Error>])?>(nil)
    var writer: (@Sendable ([PendingSend]) async -> [Result<Int64, any Error>])? {
        get { writerBox.withLock { $0 } }
        set { writerBox.withLock { $0 = newValue } }
    }

    func submit(_ send: PendingSend) async throws -> Int64 {
        try await withCheckedThrowingContinuation { c in
            let start = state.withLock { s -> Bool in
                s.queue.append((send, c))
                if s.writing { return false }
                s.writing = true
                return true
            }
            if start { Task { await self.drain() } }
        }
    }

    private func drain() async {
        while true {
            let batch = state.withLock { s -> [(PendingSend, CheckedContinuation<Int64, any Error>)] in
                let taken = Array(s.queue.prefix(Self.maxBatch))
                s.queue.removeFirst(taken.count)
                if taken.isEmpty { s.writing = false }
                return taken
            }
            if batch.isEmpty { return }
            let results = await writer?(batch.map(\.0)) ?? batch.map { _ in .failure(BrokerFailure("no writer")) }
            for ((_, c), r) in zip(batch, results) { c.resume(with: r) }
        }
    }
}
