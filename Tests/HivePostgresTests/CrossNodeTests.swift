import Foundation
import HivePostgres
import PostgresFixture
import HiveWire
import Logging
import Synchronization
import Testing

/// Two nodes (two brokers, each with its own pool and listener) on one throwaway PostgreSQL cluster.
@Suite("PostgreSQL: messages across nodes", .serialized, .timeLimit(.minutes(2)), .enabled(if: PostgresCluster.available))
struct CrossNodeTests {
    static func node(_ name: String, _ cluster: PostgresCluster) -> PostgresBroker {
        var logger = Logger(label: "pg.\(name)")
        logger.logLevel = ProcessInfo.processInfo.environment["HIVE_PG_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .error
        return PostgresBroker(host: "127.0.0.1", port: cluster.port, user: cluster.user, password: nil, database: "postgres", node: name, logger: logger)
    }

    /// A fresh cluster, nodes a and b on it (the schema made by a), and iris registered.
    static func twoNodes() async throws -> (PostgresCluster, PostgresBroker, PostgresBroker, AgentName) {
        let cluster = try PostgresCluster()
        let a = node("a", cluster), b = node("b", cluster)
        try await a.migrate()
        let iris = try AgentName("iris")
        try await a.register(iris)
        return (cluster, a, b, iris)
    }

    @Test("a send committed on one node wakes a receiver parked on another (LISTEN/NOTIFY, no polling); each message is handed out once; acked ones never come back")
    func wakeAcrossNodes() async throws {
        let (cluster, a, b, iris) = try await Self.twoNodes()
        defer { a.shutdown(); b.shutdown(); withExtendedLifetime(cluster) {} }
        try await b.migrate() // the second node finds the schema made
        // Parked on b before anything is sent: only the notification can wake it in time.
        let parked = Task { try await b.recv(iris, max: 10, wait: .seconds(20)) }
        try await Task.sleep(for: .milliseconds(300))
        let sent = ContinuousClock.now
        let id = try await a.send(from: "operator", to: iris, body: "hello from node a")
        let got = try await parked.value
        let waited = ContinuousClock.now - sent
        #expect(got.map(\.id) == [id] && got.first?.body == "hello from node a")
        #expect(waited < .seconds(2), "woken by the notification, not by the 20 s timeout: \(waited)")
        #expect(try await a.recv(iris, max: 10, wait: .zero).isEmpty, "handed out once")
        #expect(try await b.ack(iris, ids: [id]) == 1)
        #expect(try await a.requeueInflight(iris) == 0, "an acked message is not in flight")
        await #expect(throws: BrokerFailure.self) { try await a.send(from: "operator", to: try AgentName("nobody"), body: "x") }
    }

    @Test("receivers on two nodes draining one inbox get every message exactly once (FOR UPDATE SKIP LOCKED)")
    func noDoubleDelivery() async throws {
        let (cluster, a, b, iris) = try await Self.twoNodes()
        defer { a.shutdown(); b.shutdown(); withExtendedLifetime(cluster) {} }
        let total = 300
        let sender = Task { for n in 0..<total { try await a.send(from: "operator", to: iris, body: "job \(n)") } }
        func drain(_ node: PostgresBroker) async throws -> [Int64] {
            var ids: [Int64] = []
            while true {
                let got = try await node.recv(iris, max: 7, wait: .seconds(2))
                if got.isEmpty { return ids }
                ids += got.map(\.id)
                try await node.ack(iris, ids: got.map(\.id))
            }
        }
        async let onA = drain(a)
        async let onB = drain(b)
        let (fromA, fromB) = try await (onA, onB)
        try await sender.value
        #expect(Set(fromA).isDisjoint(with: fromB), "no message went to both nodes")
        #expect(fromA.count + fromB.count == total && Set(fromA + fromB).count == total, "\(fromA.count) + \(fromB.count)")
        #expect(!fromA.isEmpty && !fromB.isEmpty, "both nodes took a share")
    }

    @Test("concurrent sends of a node are written together (group commit) and each gets the id of its own message; a send to nobody in the same batch is refused alone")
    func groupCommit() async throws {
        let (cluster, a, b, iris) = try await Self.twoNodes()
        defer { a.shutdown(); b.shutdown(); withExtendedLifetime(cluster) {} }
        let sent = try await withThrowingTaskGroup(of: [(Int64, String)].self) { group in
            for s in 0..<16 {
                group.addTask {
                    var mine: [(Int64, String)] = []
                    for i in 0..<40 {
                        let body = "from \(s) number \(i)"
                        mine.append((try await a.send(from: "operator", to: iris, body: body), body))
                        if i == 20 { await #expect(throws: BrokerFailure.self) { try await a.send(from: "operator", to: try AgentName("nobody"), body: "x") } }
                    }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        var stored: [Int64: String] = [:]
        while true {
            let got = try await b.recv(iris, max: 100, wait: .zero)
            if got.isEmpty { break }
            for m in got { stored[m.id] = m.body }
            try await b.ack(iris, ids: got.map(\.id))
        }
        #expect(stored.count == 640 && sent.count == 640)
        #expect(sent.allSatisfy { stored[$0.0] == $0.1 }, "every send's id names its own message")
    }

    @Test("a PostgreSQL restart: a send while it is down fails with an error; a receiver parked across it resumes and gets what is sent after; nothing acked comes back")
    func databaseRestart() async throws {
        let (cluster, a, b, iris) = try await Self.twoNodes()
        defer { a.shutdown(); b.shutdown(); withExtendedLifetime(cluster) {} }
        let before = try await a.send(from: "operator", to: iris, body: "before")
        #expect(try await b.ack(iris, ids: try await b.recv(iris, max: 10, wait: .zero).map(\.id)) == 1)
        let parked = Task { try await b.recv(iris, max: 10, wait: .seconds(40)) }
        try await Task.sleep(for: .milliseconds(300))
        try cluster.stop()
        let down = ContinuousClock.now
        await #expect(throws: (any Error).self, "a send with the database down fails, it is not lost silently") {
            try await a.send(from: "operator", to: iris, body: "while down")
        }
        #expect(ContinuousClock.now - down < PostgresBroker.operationTimeout + .seconds(2), "and fails within its bound")
        try cluster.start()
        // The nodes reconnect by themselves; a send after the restart reaches the receiver parked across it.
        var after: Int64?
        let deadline = ContinuousClock.now + .seconds(20)
        while after == nil && ContinuousClock.now < deadline {
            after = try? await a.send(from: "operator", to: iris, body: "after")
            if after == nil { try await Task.sleep(for: .milliseconds(200)) }
        }
        let id = try #require(after, "node a sends again once the database is back")
        let got = try await parked.value
        #expect(got.map(\.id) == [id], "the parked receiver got the new message, not the acked one (\(before)): \(got)")
    }
}
