import Foundation
import HiveBroker
import HiveMetrics
import NIOSSL
import HiveWire
import Logging
import PostgresNIO
import Synchronization

/// Everything the hive keeps (``HiveStore``), on PostgreSQL, for a hive whose nodes share one database
/// (issue 15; docs/multi-host.md). The same protocols as the SQLite ``Broker``, the same lifecycles
/// deciding every state, and the same broker test suite run on both.
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
    /// This node's parked receivers (the same waiters the SQLite store parks on; no hand-off here: a
    /// receiver may sit on another node).
    let waiters = InboxWaiters()
    /// This node's sends, written together while a write is in flight (see ``write(_:client:logger:)``).
    let sends: GroupCommit<PendingSend, Result<SendCommand.Reply, BrokerError>>
    /// The server's `synchronous_commit`, read at open, for `hive info`.
    let synchronousCommit = Mutex("on")
    let sendObservers = Mutex<[@Sendable ([Int64]) -> Void]>([])
    /// Held while the messages questions owe are sent, so two callers never send the same one.
    public let questionOutbox = Mutex([String: [Int64: Int64]]())
    private let tasks = Mutex<[Task<Void, Never>]>([])
    /// Set once the store runs as a node (``startNode(lease:)``).
    let nodeState = Mutex<NodeState?>(nil)
    /// Whether this node's LISTEN connection is up: while it is not, parked receivers look each second.
    let listening = Flag()
    /// How to open a connection of its own (the node's session: duties and its name's lock).
    let connection: PostgresConnection.Configuration
    /// Unix seconds; tests inject a clock.
    let clock: @Sendable () -> Double

    public static let channel = "hive_inbox"
    /// The schema version this build writes: its newest migration's name (the SQLite store's names).
    public static var schemaVersion: String { PostgresSchema.migrations.last?.0 ?? "" }

    /// Connects to the database at `host:port` as `user` and starts the pool and the listener;
    /// `migrate()` before first use (``open`` does both).
    public init(host: String, port: Int, user: String, password: String?, database: String, tls: DatabaseURL.TLSMode = .disable,
                node: String, logger: Logger, clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) throws {
        var config = PostgresClient.Configuration(host: host, port: port, username: user, password: password, database: database,
                                                  tls: tls == .disable ? .disable : .require(.makeClientConfiguration()))
        config.options.maximumConnections = 16
        config.options.connectTimeout = .seconds(5)
        // A dead host is noticed in seconds, not hours: idle pooled connections are probed every 5 s, the
        // server drops a session whose peer stopped answering TCP keepalives (5 s idle, then 3 probes 2 s
        // apart), and no statement or open transaction outlives its bound on the server either.
        config.options.keepAliveBehavior = .init(frequency: .seconds(5))
        config.options.additionalStartupParameters = [
            ("statement_timeout", "\(Int(Self.operationTimeout.components.seconds) * 1000)"),
            ("idle_in_transaction_session_timeout", "10000"),
            ("tcp_keepalives_idle", "5"), ("tcp_keepalives_interval", "2"), ("tcp_keepalives_count", "3"),
        ]
        self.client = PostgresClient(configuration: config, backgroundLogger: logger)
        var single = PostgresConnection.Configuration(host: host, port: port, username: user, password: password, database: database,
                                                      tls: tls == .disable ? .disable : .require(try NIOSSLContext(configuration: .makeClientConfiguration())))
        single.options.connectTimeout = .seconds(5)
        single.options.additionalStartupParameters = config.options.additionalStartupParameters
        self.connection = single
        self.node = node
        self.logger = logger
        self.clock = clock
        let client = self.client, waiters = self.waiters, listening = self.listening
        self.sends = GroupCommit(maxBatch: 64, metric: HiveMetrics.Name.postgresCommit) { batch in
            try PostgresThreads.block { try await Self.write(batch, client: client, logger: logger) }
        }
        // On the store's own threads, like every other part of its work (see PostgresThreads).
        let runner = Task(executorPreference: PostgresThreads.shared) { await client.run() }
        let listener = Task(executorPreference: PostgresThreads.shared) {
            await Self.listen(client: client, waiters: waiters, listening: listening, logger: logger)
        }
        tasks.withLock { $0 = [runner, listener] }
    }

    /// Connects and brings the schema up to date; blocks until done.
    public static func open(host: String, port: Int, user: String, password: String?, database: String,
                            tls: DatabaseURL.TLSMode = .disable, node: String, logger: Logger,
                            clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) throws -> PostgresBroker {
        let store = try PostgresBroker(host: host, port: port, user: user, password: password, database: database, tls: tls, node: node,
                                   logger: logger, clock: clock)
        do {
            try ours {
                try PostgresThreads.block { try await store.migrate() }
                let level = try store.read { client in
                    var level = "on"
                    for try await v in try await client.query("SHOW synchronous_commit", logger: logger).decode(String.self) { level = v }
                    return level
                }
                store.synchronousCommit.withLock { $0 = level }
            }
        } catch {
            store.shutdown()
            throw error
        }
        return store
    }

    func addTask(_ task: Task<Void, Never>) { tasks.withLock { $0.append(task) } }

    /// Stops the listener and the pool; parked receivers return empty.
    public func shutdown() {
        waiters.stopAll()
        tasks.withLock { $0.forEach { $0.cancel() } }
    }

    /// LISTENs on one connection of the pool for as long as the broker lives, again after every loss
    /// (backing off to 1 s), and wakes every parked receiver after a loss: a notification sent while
    /// nobody listened is gone, the message it announced is not. The connection is probed every 5 s
    /// (a leased connection gets no keepalive from the pool): one that stopped answering is replaced.
    static func listen(client: PostgresClient, waiters: InboxWaiters, listening: Flag, logger: Logger) async {
        var backoff = Duration.milliseconds(50)
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            try await connection.listen(on: Self.channel) { notifications in
                                listening.set(true)
                                waiters.notifyAll() // whatever was sent while this node did not listen
                                for try await n in notifications { waiters.notify([n.payload]) }
                            }
                        }
                        group.addTask {
                            while true {
                                try await Task.sleep(for: .seconds(5))
                                _ = try await bounded { try await connection.query("SELECT 1", logger: logger) }
                            }
                        }
                        defer { group.cancelAll() }
                        try await group.next()
                    }
                }
            } catch {
                if Task.isCancelled { break }
                if listening.isSet { backoff = .milliseconds(50) } // it had listened: a new loss, not a retry
                logger.warning("listening for sends stopped, again in \(backoff): \(error)")
            }
            listening.set(false)
            waiters.notifyAll() // parked receivers look each second until the listener is back
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(1))
        }
        listening.set(false)
    }

    /// Creates or upgrades the schema, one node at a time (an advisory lock held for the transaction).
    /// A database a newer hive migrated is refused, as the SQLite store refuses its file.
    public func migrate() async throws {
        let logger = self.logger, now = clock()
        try await transaction { c in
            try await c.query("SELECT pg_advisory_xact_lock(\(PostgresSchema.migrationLock))", logger: logger)
            try await c.query("CREATE TABLE IF NOT EXISTS hive_migrations (identifier TEXT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)", logger: logger)
            var applied: Set<String> = []
            for try await id in try await c.query("SELECT identifier FROM hive_migrations", logger: logger).decode(String.self) { applied.insert(id) }
            let unknown = applied.subtracting(PostgresSchema.migrations.map(\.0)).sorted()
            guard unknown.isEmpty else {
                throw BrokerError.storage("the database was migrated by a newer hive (\(unknown.joined(separator: ", "))): run that hive")
            }
            for (id, statements) in PostgresSchema.migrations where !applied.contains(id) {
                for sql in statements { try await c.query(PostgresQuery(unsafeSQL: sql), logger: logger) }
                try await c.query("INSERT INTO hive_migrations (identifier, applied_at) VALUES (\(id), \(now))", logger: logger)
            }
        }
    }

    // MARK: - Running statements

    /// Longest one operation waits: with the database unreachable the pool keeps a request queued while it
    /// retries (up to 15 s before its circuit breaker trips), and a send must fail clearly instead.
    public static let operationTimeout: Duration = .seconds(5)

    /// `body` in a transaction, bounded by ``operationTimeout``; a refusal of ours thrown inside comes out
    /// as itself, not wrapped.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await Self.bounded {
            do { return try await self.client.withTransaction(logger: self.logger) { try await body($0) } } catch let e as PostgresTransactionError {
                throw e.closureError ?? e.rollbackError ?? e.commitError ?? e.beginError ?? e
            }
        }
    }

    /// `operation`, or a clear error once ``operationTimeout`` has passed. The caller is answered at the
    /// bound even when the operation cannot be cancelled (postgres-nio's query on a connection whose peer
    /// vanished waits for TCP to give up): the operation is cancelled and left to end by itself. A task
    /// group would wait for it, so the race is a continuation resumed once.
    static func bounded<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        try await bounded(operation, late: { _ in })
    }

    /// ``bounded(_:)``, with what to do with a result that comes after the caller was answered (a
    /// connection opened too late is closed, never left holding what it took).
    static func bounded<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T,
                                     late: @escaping @Sendable (T) async -> Void) async throws -> T {
        let once = ResumeOnce<T>()
        return try await withCheckedThrowingContinuation { continuation in
            once.set(continuation)
            let work = Mutex<Task<Void, Never>?>(nil)
            let timer = Task(executorPreference: PostgresThreads.shared) {
                try? await Task.sleep(for: Self.operationTimeout)
                if once.finish(.failure(BrokerError.storage("the database did not answer within \(Self.operationTimeout) (is it down or unreachable?)"))) {
                    work.withLock { $0?.cancel() }
                }
            }
            work.withLock {
                $0 = Task(executorPreference: PostgresThreads.shared) {
                    do {
                        let value = try await operation()
                        if !once.finish(.success(value)) { await late(value) }
                    } catch { once.finish(.failure(error)) }
                    timer.cancel() // thousands of operations a second must not leave as many sleeping timers behind
                }
            }
        }
    }

    /// A transaction from a blocking caller (core's threads), bounded; errors as ``BrokerError``s.
    @discardableResult
    func write<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) throws -> T {
        try Self.ours { try PostgresThreads.block { try await self.transaction(body) } }
    }

    /// One statement (or a few, each its own transaction) from a blocking caller, bounded.
    @discardableResult
    func read<T: Sendable>(_ body: @escaping @Sendable (PostgresClient) async throws -> T) throws -> T {
        try Self.ours { try PostgresThreads.block { try await Self.bounded { try await body(self.client) } } }
    }

    /// Our own refusals as they are; anything else (the driver, the server) as a storage error that says
    /// what PostgreSQL said.
    static func ours<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as BrokerError { throw e } catch let e as RequestError { throw e } catch {
            throw storage(error)
        }
    }

    /// ``ours(_:)`` for the protocol methods whose only error is a ``BrokerError``.
    static func typed<T>(_ body: () throws -> T) throws(BrokerError) -> T {
        do { return try body() } catch let e as BrokerError { throw e } catch { throw storage(error) }
    }

    static func storage(_ error: any Error) -> BrokerError {
        if let e = error as? PSQLError {
            // PSQLError's description hides the server's words on purpose; the operator needs them.
            let said = e.serverInfo.map { [$0[.sqlState], $0[.message], $0[.detail]].compactMap { $0 }.joined(separator: ": ") }
            return .storage("PostgreSQL: \(said ?? "\(e.code)")")
        }
        return .storage(String(describing: error))
    }
}

/// A continuation resumed by whichever comes first, once.
final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<T, any Error>?>(nil)
    func set(_ c: CheckedContinuation<T, any Error>) { continuation.withLock { $0 = c } }
    /// Resumes with `result` unless already resumed; true when this call did.
    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        guard let c = continuation.withLock({ c -> CheckedContinuation<T, any Error>? in defer { c = nil }; return c }) else { return false }
        c.resume(with: result)
        return true
    }
}

/// A flag one task sets and others read.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set(_ on: Bool) { value.store(on, ordering: .relaxed) }
}

/// Reading rows by column name.
extension PostgresRowSequence {
    /// Every row, as random-access rows (the result sets here are bounded by their queries' limits).
    func all() async throws -> [PostgresRandomAccessRow] {
        var out: [PostgresRandomAccessRow] = []
        for try await row in self { out.append(row.makeRandomAccess()) }
        return out
    }
}

extension PostgresRandomAccessRow {
    func get<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T { try self[column].decode(T.self) }
}

extension PostgresConnection {
    /// How many rows a statement changed (read from its `RETURNING 1`).
    func changed(_ query: PostgresQuery, logger: Logger) async throws -> Int {
        var n = 0
        for try await _ in try await self.query(query, logger: logger) { n += 1 }
        return n
    }
}
