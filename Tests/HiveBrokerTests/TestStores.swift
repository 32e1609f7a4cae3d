import Foundation
@testable import HiveBroker
import HivePostgres
import HiveWire
import Logging
import PostgresFixture
import Synchronization
import Testing

/// The two stores the broker suite runs on: the embedded SQLite file and PostgreSQL (a throwaway cluster
/// shared by the whole test process, a fresh database per test made from a migrated template).
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }

    /// The kinds this machine can run: PostgreSQL only when its server binaries are installed (`.ci/run`
    /// installs them; a developer machine without them still runs the SQLite half).
    static var available: [StoreKind] { PostgresCluster.available ? allCases : [.sqlite] }
}

/// One cluster for the test process, made on first use and stopped when the process exits.
enum SharedPostgres {
    struct Server: Sendable { let port: Int; let user: String }
    private static let made = Mutex<(cluster: PostgresCluster?, databases: Int, error: String?)>((nil, 0, nil))

    /// A new empty database on the shared cluster, migrated; returns its name.
    static func database() throws -> (Server, String) {
        let (server, n) = try made.withLock { m -> (Server, Int) in
            if let error = m.error { throw ClusterError(error) }
            if m.cluster == nil {
                do {
                    m.cluster = try PostgresCluster()
                    atexit { SharedPostgres.stop() }
                } catch { m.error = "\(error)"; throw error }
            }
            m.databases += 1
            return (Server(port: m.cluster!.port, user: m.cluster!.user), m.databases)
        }
        let name = "hive_test_\(n)"
        try made.withLock { try $0.cluster!.createDatabase(name) }
        return (server, name)
    }

    static func stop() { made.withLock { $0.cluster = nil } }
}

/// A store on fresh storage; `sqlite` is the same store as a ``Broker`` (nil on PostgreSQL), for tests of
/// what only the SQLite file has; `reopen` lets go of it and opens the same storage again (a restart).
struct MadeStore: Sendable {
    let store: any HiveStore
    let sqlite: Broker?
    let reopen: @Sendable () throws -> any HiveStore
    let cleanup: @Sendable () -> Void
}

/// A store of `kind` on fresh storage with `clock`.
func makeStore(_ kind: StoreKind, clock: @escaping @Sendable () -> Double) throws -> MadeStore {
    switch kind {
    case .sqlite:
        let dir = FileManager.default.temporaryDirectory.appending(path: "hive-broker-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appending(path: "broker.sqlite").path
        let broker = try Broker(path: path, clock: clock)
        return MadeStore(store: broker, sqlite: broker, reopen: { try Broker(path: path, clock: clock) },
                         cleanup: { try? FileManager.default.removeItem(at: dir) })
    case .postgres:
        let (server, database) = try SharedPostgres.database()
        let logger = { var l = Logger(label: "pg.test"); l.logLevel = .error; return l }()
        let open = { @Sendable in
            try PostgresBroker.open(host: "127.0.0.1", port: server.port, user: server.user, password: nil, database: database,
                                    node: "test", logger: logger, clock: clock)
        }
        let store = try open()
        let reopened = Mutex<[PostgresBroker]>([])
        return MadeStore(store: store, sqlite: nil, reopen: {
            store.shutdown()
            let again = try open()
            reopened.withLock { $0.append(again) }
            return again
        }, cleanup: {
            store.shutdown()
            reopened.withLock { $0.forEach { $0.shutdown() } }
        })
    }
}
