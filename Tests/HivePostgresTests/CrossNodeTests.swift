import Foundation
import HiveBroker
import HivePostgres
import PostgresFixture
import HiveWire
import Logging
import Synchronization
import Testing

/// Runs blocking store calls on a thread of their own, as core's connection threads do.
final class OnThread<T: Sendable>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, any Error>?

    init(_ body: @escaping @Sendable () throws -> T) {
        Thread {
            self.result = Result { try body() }
            self.done.signal()
        }.start()
    }

    func join() throws -> T {
        done.wait()
        return try result!.get()
    }
}

/// Two nodes (two stores, each with its own pool and listener) on one throwaway PostgreSQL cluster.
@Suite("PostgreSQL: messages across nodes", .serialized, .timeLimit(.minutes(2)), .enabled(if: PostgresCluster.available))
struct CrossNodeTests {
    static func node(_ name: String, _ cluster: PostgresCluster) throws -> PostgresBroker {
        var logger = Logger(label: "pg.\(name)")
        logger.logLevel = ProcessInfo.processInfo.environment["HIVE_PG_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .error
        return try PostgresBroker.open(host: "127.0.0.1", port: cluster.port, user: cluster.user, password: nil, database: "postgres", node: name, logger: logger)
    }

    /// A fresh cluster, nodes a and b on it (both migrate: the second finds the schema made), iris registered.
    static func twoNodes() throws -> (PostgresCluster, PostgresBroker, PostgresBroker, AgentName) {
        let cluster = try PostgresCluster()
        let a = try node("a", cluster), b = try node("b", cluster)
        let iris = try AgentName("iris")
        _ = try a.register(iris)
        return (cluster, a, b, iris)
    }

    @Test("both stores carry the same schema version: a migration added to one is added to the other under the same name")
    func schemaInStep() throws {
        #expect(PostgresBroker.schemaVersion == Broker.schemaVersion)
    }

    @Test("a send committed on one node wakes a receiver parked on another (LISTEN/NOTIFY, no polling); each message is handed out once; acked ones never come back")
    func wakeAcrossNodes() throws {
        let (cluster, a, b, iris) = try Self.twoNodes()
        defer { a.shutdown(); b.shutdown(); withExtendedLifetime(cluster) {} }
        // Parked on b before anything is sent: only the notification can wake it in time.
        let parked = OnThread { try b.recv(iris, max: 10, wait: .seconds(20)) }
        Thread.sleep(forTimeInterval: 0.3)
        let sent = ContinuousClock.now
        let id = try a.send(from: .operator, to: .agent(iris), body: "hello from node a", inReplyTo: nil).ids[0]
        let got = try parked.join().messages
        let waited = ContinuousClock.now - sent
        #expect(got.map(\.id) == [id] && got.first?.body == "hello from node a")
        #expect(waited < .seconds(2), "woken by the notification, not by the 20 s timeout: \(waited)")
        #expect(try a.recv(iris, max: 10, wait: .zero).messages.isEmpty, "handed out once")
        #expect(try b.ackTurn(iris, ids: [id]).acked == [id])
        #expect(try a.requeueInflight(iris) == 0, "an acked message is not in flight")
        #expect(throws: BrokerError.unknownRecipient("nobody")) { try a.send(from: .operator, to: .agent(try AgentName("nobody")), body: "x", inReplyTo: nil) }
    }

    @Test("a broadcast from one node reaches every other agent, whichever node its receiver is parked on")
    func broadcastAcrossNodes() throws {
        let (cluster, a, b, iris) = try Self.twoNodes()
        defer { a.shutdown(); b.shutdown(); withExtendedLifetime(cluster) {} }
        let zed = try AgentName("zed"), sam = try AgentName("sam")
        _ = try b.register(zed)
        _ = try b.register(sam)
        let onA = OnThread { try a.recv(iris, max: 10, wait: .seconds(20)) }
        let onB = OnThread { try b.recv(zed, max: 10, wait: .seconds(20)) }
        Thread.sleep(forTimeInterval: 0.3)
        let reply = try b.send(from: .agent(sam), to: .broadcast, body: "standup in 5", inReplyTo: nil)
        #expect(reply.recipients.sorted() == ["iris", "zed"], "every live agent but the sender")
        #expect(try onA.join().messages.map(\.body) == ["standup in 5"])
        #expect(try onB.join().messages.map(\.body) == ["standup in 5"])
        #expect(try a.recv(sam, max: 10, wait: .zero).messages.isEmpty, "not to the sender")
    }

    @Test("receivers on two nodes draining one inbox get every message exactly once (FOR UPDATE SKIP LOCKED)")
    func noDoubleDelivery() throws {
        let (cluster, a, b, iris) = try Self.twoNodes()
        defer { a.shutdown(); b.shutdown(); withExtendedLifetime(cluster) {} }
        let total = 300
        let sender = OnThread { for n in 0..<total { _ = try a.send(from: .operator, to: .agent(iris), body: "job \(n)", inReplyTo: nil) } }
        @Sendable func drain(_ node: PostgresBroker) throws -> [Int64] {
            var ids: [Int64] = []
            while true {
                let got = try node.recv(iris, max: 7, wait: .seconds(2)).messages
                if got.isEmpty { return ids }
                ids += got.map(\.id)
                _ = try node.ackTurn(iris, ids: got.map(\.id))
            }
        }
        let onA = OnThread { try drain(a) }, onB = OnThread { try drain(b) }
        let (fromA, fromB) = (try onA.join(), try onB.join())
        try sender.join()
        #expect(Set(fromA).isDisjoint(with: fromB), "no message went to both nodes")
        #expect(fromA.count + fromB.count == total && Set(fromA + fromB).count == total, "\(fromA.count) + \(fromB.count)")
        #expect(!fromA.isEmpty && !fromB.isEmpty, "both nodes took a share")
    }

    @Test("concurrent sends of a node are written together (group commit) and each gets the id of its own message; a send to nobody in the same batch is refused alone")
    func groupCommit() throws {
        let (cluster, a, b, iris) = try Self.twoNodes()
        defer { a.shutdown(); b.shutdown(); withExtendedLifetime(cluster) {} }
        let senders = (0..<16).map { s in
            OnThread { () throws -> [(Int64, String)] in
                var mine: [(Int64, String)] = []
                for i in 0..<40 {
                    let body = "from \(s) number \(i)"
                    mine.append((try a.send(from: .operator, to: .agent(iris), body: body, inReplyTo: nil).ids[0], body))
                    if i == 20 { #expect(throws: BrokerError.unknownRecipient("nobody")) { try a.send(from: .operator, to: .agent(try AgentName("nobody")), body: "x", inReplyTo: nil) } }
                }
                return mine
            }
        }
        let sent = try senders.flatMap { try $0.join() }
        var stored: [Int64: String] = [:]
        while true {
            let got = try b.recv(iris, max: 100, wait: .zero).messages
            if got.isEmpty { break }
            for m in got { stored[m.id] = m.body }
            _ = try b.ackTurn(iris, ids: got.map(\.id))
        }
        #expect(stored.count == 640 && sent.count == 640)
        #expect(sent.allSatisfy { stored[$0.0] == $0.1 }, "every send's id names its own message")
    }

    @Test("two nodes firing the same due reminders at once deliver each exactly once")
    func remindersOnce() throws {
        let clock = Mutex(1_800_000_000.0)
        let cluster = try PostgresCluster()
        var logger = Logger(label: "pg")
        logger.logLevel = .error
        let a = try PostgresBroker.open(host: "127.0.0.1", port: cluster.port, user: cluster.user, password: nil, database: "postgres", node: "a",
                                        logger: logger, clock: { clock.withLock { $0 } })
        let b = try PostgresBroker.open(host: "127.0.0.1", port: cluster.port, user: cluster.user, password: nil, database: "postgres", node: "b",
                                        logger: logger, clock: { clock.withLock { $0 } })
        defer { a.shutdown(); b.shutdown(); withExtendedLifetime(cluster) {} }
        let names = try (0..<10).map { try AgentName("agent\($0)") }
        for n in names { _ = try a.register(n) }
        for i in 0..<500 { _ = try a.createReminder(names[i % 10], body: "r\(i)", filePath: nil, dueAt: 1_800_000_010, cap: 100) }
        clock.withLock { $0 += 60 }
        @Sendable func fire(_ node: PostgresBroker) throws -> Int {
            var total = 0
            while true {
                let (delivered, failed) = try node.deliverDueReminders(limit: 32)
                #expect(failed == 0)
                if delivered == 0 { return total }
                total += delivered
            }
        }
        let onA = OnThread { try fire(a) }, onB = OnThread { try fire(b) }
        let (byA, byB) = (try onA.join(), try onB.join())
        #expect(byA + byB == 500, "a: \(byA), b: \(byB)")
        var bodies: [String] = []
        for n in names {
            while true {
                let got = try b.recv(n, max: 100, wait: .zero).messages
                if got.isEmpty { break }
                bodies += got.map { $0.body.components(separatedBy: "\n")[1] }
            }
        }
        #expect(bodies.count == 500 && Set(bodies).count == 500, "each reminder's message once: \(bodies.count) messages, \(Set(bodies).count) distinct")
        #expect(try a.pendingReminders(agent: nil).isEmpty)
    }

    @Test("a PostgreSQL restart: a send while it is down fails with an error; a receiver parked across it resumes and gets what is sent after; nothing acked comes back")
    func databaseRestart() throws {
        let (cluster, a, b, iris) = try Self.twoNodes()
        defer { a.shutdown(); b.shutdown(); withExtendedLifetime(cluster) {} }
        let before = try a.send(from: .operator, to: .agent(iris), body: "before", inReplyTo: nil).ids[0]
        #expect(try b.ackTurn(iris, ids: try b.recv(iris, max: 10, wait: .zero).messages.map(\.id)).acked == [before])
        let parked = OnThread { try b.recv(iris, max: 10, wait: .seconds(40)) }
        Thread.sleep(forTimeInterval: 0.3)
        try cluster.stop()
        let down = ContinuousClock.now
        #expect(throws: BrokerError.self, "a send with the database down fails, it is not lost silently") {
            try a.send(from: .operator, to: .agent(iris), body: "while down", inReplyTo: nil)
        }
        #expect(ContinuousClock.now - down < PostgresBroker.operationTimeout + .seconds(2), "and fails within its bound")
        try cluster.start()
        // The nodes reconnect by themselves; a send after the restart reaches the receiver parked across it.
        var after: Int64?
        let deadline = ContinuousClock.now + .seconds(20)
        while after == nil && ContinuousClock.now < deadline {
            after = try? a.send(from: .operator, to: .agent(iris), body: "after", inReplyTo: nil).ids[0]
            if after == nil { Thread.sleep(forTimeInterval: 0.2) }
        }
        let id = try #require(after, "node a sends again once the database is back")
        let got = try parked.join().messages
        #expect(got.map(\.id) == [id], "the parked receiver got the new message, not the acked one (\(before)): \(got)")
    }

    @Test("a PostgreSQL restart mid-traffic: every send that returned ok is delivered, none twice unless flagged redelivered, and nothing acked comes back")
    func restartMidTraffic() throws {
        let (cluster, a, b, iris) = try Self.twoNodes()
        defer { a.shutdown(); b.shutdown(); withExtendedLifetime(cluster) {} }
        let stop = Mutex(false), okBodies = Mutex<Set<String>>([]), failed = Mutex(0)
        // A sender on node a, sending as fast as it can, through the restart.
        let sender = OnThread {
            var n = 0
            while !stop.withLock({ $0 }) {
                n += 1
                let body = "job \(n)"
                do {
                    _ = try a.send(from: .operator, to: .agent(iris), body: body, inReplyTo: nil)
                    okBodies.withLock { _ = $0.insert(body) }
                } catch {
                    failed.withLock { $0 += 1 }
                    Thread.sleep(forTimeInterval: 0.05)
                }
            }
        }
        // A receiver on node b, claiming and acking through the restart.
        // What the receiver saw, in order: each hand-out, and each ack that returned.
        struct Seen: Sendable { var id: Int64; var body: String; var redelivered: Bool; var ackedBefore: Bool }
        let seen = Mutex<[Seen]>([]), acked = Mutex<Set<Int64>>([])
        @Sendable func take(_ got: [MessageView]) {
            let done = acked.withLock { $0 }
            seen.withLock { $0 += got.map { Seen(id: $0.id, body: $0.body, redelivered: $0.redelivered, ackedBefore: done.contains($0.id)) } }
            if let reply = try? b.ackTurn(iris, ids: got.map(\.id)) { acked.withLock { $0.formUnion(reply.acked) } }
        }
        let receiver = OnThread {
            while !stop.withLock({ $0 }) {
                guard let got = try? b.recv(iris, max: 20, wait: .milliseconds(500)).messages, !got.isEmpty else { continue }
                take(got)
            }
        }
        Thread.sleep(forTimeInterval: 1)
        try cluster.stop()
        // Down longer than an operation's bound: a send caught in it fails rather than waiting it out.
        Thread.sleep(forTimeInterval: Double(PostgresBroker.operationTimeout.components.seconds) + 1)
        try cluster.start()
        // Traffic flows again on both nodes by itself.
        let before = okBodies.withLock { $0.count }
        let deadline = ContinuousClock.now + .seconds(20)
        while okBodies.withLock({ $0.count }) < before + 50, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.1) }
        stop.withLock { $0 = true }
        try sender.join()
        try receiver.join()
        #expect(failed.withLock { $0 } > 0, "sends failed while the database was down (else the restart tested nothing)")
        #expect(okBodies.withLock { $0.count } > before, "sends succeed again after the restart")
        // Whatever is left (handed out and not acked when the receiver stopped, or still pending): drained now.
        _ = try b.requeueInflight(iris)
        while true {
            let got = try b.recv(iris, max: 100, wait: .zero).messages
            if got.isEmpty { break }
            take(got)
        }
        let all = seen.withLock { $0 }
        let delivered = Set(all.map(\.body))
        let missing = okBodies.withLock { $0 }.subtracting(delivered)
        #expect(missing.isEmpty, "every send that returned ok was delivered; missing: \(missing.sorted().prefix(5))")
        let reacked = all.filter { $0.ackedBefore }.map(\.id)
        #expect(reacked.isEmpty, "acked messages handed out again: \(reacked.prefix(5))")
        var handedOut: Set<Int64> = []
        for m in all {
            #expect(handedOut.insert(m.id).inserted || m.redelivered, "message \(m.id) handed out twice without the redelivered flag")
        }
        #expect(try b.recv(iris, max: 100, wait: .zero).messages.isEmpty, "nothing acked comes back")
    }

    @Test("a move is claimed once, then either arrives or is called off, never both: whichever compare-and-set comes first wins; a reserved uid is never handed out again")
    func moveCompareAndSet() throws {
        let (cluster, a, b, iris) = try Self.twoNodes()
        defer { a.shutdown(); b.shutdown(); withExtendedLifetime(cluster) {} }
        try a.startNode(); try b.startNode()
        for node in [a, b] { try node.heartbeat(NodeBeat(host: "h", endpoint: nil, cores: 1, memoryMegabytes: 1, load: 0, states: [])) }
        _ = try a.register(try AgentName("zed"), on: "a")
        let zed = try AgentName("zed")
        #expect(try !b.arrive(zed, from: "a", uid: nil), "no arrival without a move under way")
        #expect(try a.beginMove(zed, to: "b"))
        #expect(try !a.beginMove(zed, to: "b"), "one move at a time")
        #expect(try b.moveUnderWay(zed).map { [$0.from, $0.to] } == ["a", "b"])
        #expect(try !b.beginMove(zed, to: "a"), "only its own node moves it")
        // Called off first: the arrival that comes later fails, and the agent stays on a.
        #expect(try a.callOffMove(zed, to: "b"))
        #expect(try !b.arrive(zed, from: "a", uid: nil))
        #expect(try a.placements()["zed"]?.node == "a" && b.moveUnderWay(zed) == nil)
        // Arrived first: calling it off then fails, and the agent is b's, with the uid b reserved for it.
        #expect(try a.beginMove(zed, to: "b"))
        let uid = try b.reserveUID(in: 30_000...30_099, skip: { _ in false })
        #expect(try b.arrive(zed, from: "a", uid: uid))
        #expect(try !a.callOffMove(zed, to: "b"))
        #expect(try a.placements()["zed"]?.node == "b" && a.agent(withUID: uid) == "zed")
        #expect(b.mayRun(zed), "runnable on b at once, before its next heartbeat")
        #expect(try b.cageUID(for: iris, in: 30_000...30_099) == uid + 1, "the reserved uid is nobody else's")
        // A node that starts again calls off whatever move it had under way.
        #expect(try b.beginMove(zed, to: "a"))
        b.shutdown()
        let b2 = try Self.node("b", cluster)
        defer { b2.shutdown() }
        try b2.startNode()
        #expect(try b2.moveUnderWay(zed) == nil && a.placements()["zed"]?.node == "b")
    }
}
