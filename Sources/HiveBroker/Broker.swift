import Foundation
import GRDB
import HiveWire
import Synchronization

/// The durable message store of one hive: the agent registry and every message, in one SQLite file.
///
/// All writes go through GRDB's single writer connection. Sends are group-committed (see
/// ``GroupCommit``); receivers park on ``InboxWaiters`` and are woken right after the commit that
/// touched their inbox. Every call blocks its thread: the core serves each connection on a thread of
/// its own, which keeps a round trip free of executor hops (see docs/benchmarks.md).
public final class Broker: Sendable {
    /// How hard a commit works to reach the disk (SQLite `PRAGMA synchronous`, WAL mode).
    public enum Synchronous: String, Sendable, CaseIterable {
        /// fsync the WAL on every commit: a send that returned ok survives a power cut or kernel crash,
        /// not only `kill -9` of the daemon. The default.
        case full = "FULL"
        /// fsync only at checkpoints: a send that returned ok survives `kill -9` of the daemon, but the
        /// last commits before a power cut may be lost. Lower latency.
        case normal = "NORMAL"

        /// The value `PRAGMA synchronous` reads back.
        public var level: Int { self == .full ? 2 : 1 }
    }

    public let pool: DatabasePool
    public let waiters = InboxWaiters()
    /// A connection used only for WAL checkpoints (see ``checkpoint()``).
    private let checkpointer: DatabaseQueue
    public let synchronous: Synchronous
    let clock: @Sendable () -> Double
    let sendObservers = Mutex<[@Sendable ([Int64]) -> Void]>([])
    let sends: GroupCommit<SendJob, Result<SendCommand.Reply, BrokerError>>
    /// Held while the messages questions owe are sent, so two callers never send the same one.
    public let questionOutbox = Mutex([String: [Int64: Int64]]())

    struct SendJob: Sendable {
        var from: Sender
        var to: Recipient
        var body: String
        var inReplyTo: Int64?
    }

    /// Opens (creating if needed) the broker database at `path` and applies pending migrations.
    /// `clock` returns unix seconds; tests inject one.
    public init(path: String, synchronous: Synchronous = .full,
                clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) throws {
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.label = "broker"
        let pool = try DatabasePool(path: path, configuration: config)
        // GRDB sets NORMAL when it enables WAL; set ours on the one writer connection afterwards.
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous.rawValue)")
        }
        try Schema.refuseNewer(pool, path: path)
        try Schema.migrator.migrate(pool)
        self.checkpointer = try DatabaseQueue(path: path, configuration: config)
        self.pool = pool
        self.synchronous = synchronous
        self.clock = clock
        let waiters = self.waiters
        self.sends = GroupCommit { jobs in
            let now = clock()
            let handoff = Handoff(waiters: waiters)
            let results: [Result<SendCommand.Reply, BrokerError>]
            do {
                results = try pool.write { db in
                    // Each job in a savepoint of its own: a job that fails leaves none of its rows behind,
                    // and the others in the batch still commit.
                    let results = jobs.map { job in
                        Result { () throws(BrokerError) in
                            var reply: SendCommand.Reply?
                            var handed: [MessageView] = []
                            do {
                                try db.inSavepoint {
                                    (reply, handed) = try Broker.insert(job, at: now, handoff: handoff, in: db)
                                    return .commit
                                }
                            } catch let e as BrokerError { throw e } catch { throw Broker.storage(error) }
                            handed.forEach(handoff.add)
                            return reply!
                        }
                    }
                    try handoff.countUnread(db)
                    return results
                }
            } catch {
                handoff.release()
                throw error
            }
            handoff.deliver()
            waiters.notify(results.flatMap { (try? $0.get())?.recipients ?? [] })
            return results
        }
    }

    /// Copies committed WAL frames into the database file (a PASSIVE checkpoint: it never blocks
    /// writers or readers), on a connection of its own. The core calls it twice a second, so at ordinary
    /// rates the WAL never reaches SQLite's automatic threshold (1000 pages) and no send pays for a
    /// checkpoint; under a burst the automatic one still keeps the WAL at a few MB.
    public func checkpoint() throws {
        _ = try checkpointer.writeWithoutTransaction { db in try db.checkpoint(.passive) }
    }

    /// The `synchronous` level actually in force on the writer connection (1 = NORMAL, 2 = FULL).
    public func synchronousLevel() throws -> Int {
        try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    /// The schema version this build writes (its newest migration's name), the same on both stores.
    public static var schemaVersion: String { Schema.latest }

    static func storage(_ error: any Error) -> BrokerError {
        .storage(String(describing: error))
    }
}
