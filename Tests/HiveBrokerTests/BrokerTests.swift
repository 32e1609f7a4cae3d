import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import HiveBroker
import GRDB
import HiveWire
import Synchronization
import Testing

/// Runs blocking work on a thread of its own; `join` waits for it and returns its result.
final class Background<T: Sendable>: @unchecked Sendable {
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

    /// A flag one thread sets and others read.
    final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        var isSet: Bool { lock.withLock { value } }
        func set() { lock.withLock { value = true } }
    }
}

/// A clock the test moves by hand (unix seconds).
final class ManualClock: Sendable {
    private let now = Mutex(1_800_000_000.0)
    func read() -> Double { now.withLock { $0 } }
    func advance(days: Double) { now.withLock { $0 += days * 86400 } }
}

/// A store of `kind` on fresh storage with a manual clock; `sqlite` is the same store as a ``Broker``
/// (nil on PostgreSQL), for tests of what only the SQLite file has.
final class TestBroker: Sendable {
    let broker: any HiveStore
    let sqlite: Broker?
    let clock: ManualClock
    private let cleanup: @Sendable () -> Void

    init(_ kind: StoreKind = .sqlite) throws {
        let clock = ManualClock()
        self.clock = clock
        let made = try makeStore(kind, clock: { clock.read() })
        broker = made.store
        sqlite = made.sqlite
        cleanup = made.cleanup
        _ = try broker.ensureManager()
    }

    func advance(days: Double) { clock.advance(days: days) }

    deinit { cleanup() }

    func agent(_ name: String) throws -> AgentName {
        let n = try AgentName.spawnable(name)
        _ = try broker.register(n)
        return n
    }
}

@Suite("Broker")
struct BrokerTests {
    @Test("runs WAL with synchronous FULL")
    func durabilitySettings() throws {
        let t = try TestBroker()
        let broker = t.sqlite!
        #expect(try broker.synchronousLevel() == 2)
        let mode = try broker.pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
    }

    @Test("send, recv, ack", arguments: StoreKind.available)
    func roundTrip(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        let sent = try broker.send(from: .operator, to: .agent(iris), body: "hello", inReplyTo: nil)
        #expect(sent.recipients == ["iris"])
        let got = try broker.recv(iris, max: 5, wait: .zero)
        #expect(got.messages.map(\.body) == ["hello"])
        #expect(got.messages[0].from == "operator")
        #expect(got.messages[0].state == .delivered)
        #expect(try broker.counts("iris") == (0, 1))
        let ack = try broker.ackTurn(iris, ids: sent.ids)
        #expect(ack.acked == sent.ids && ack.skipped.isEmpty)
        #expect(try broker.counts("iris") == (0, 0))
        let again = try broker.recv(iris, max: 5, wait: .zero)
        #expect(again.messages.isEmpty, "an acked message is never handed out again")
    }

    @Test("recv hands out oldest first, at most max, and reports what is left", arguments: StoreKind.available)
    func batching(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        for i in 1...5 { _ = try broker.send(from: .operator, to: .agent(iris), body: "m\(i)", inReplyTo: nil) }
        let first = try broker.recv(iris, max: 2, wait: .zero)
        #expect(first.messages.map(\.body) == ["m1", "m2"])
        #expect(first.unread == 3)
    }

    @Test("unknown and destroyed recipients are refused, not dropped", arguments: StoreKind.available)
    func recipients(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        #expect(throws: BrokerError.unknownRecipient("ghost")) {
            try broker.send(from: .operator, to: .agent(try AgentName("ghost")), body: "x", inReplyTo: nil)
        }
        let iris = try t.agent("iris")
        try broker.destroy(iris, purge: false)
        #expect(throws: BrokerError.destroyedRecipient("iris")) {
            try broker.send(from: .operator, to: .agent(iris), body: "x", inReplyTo: nil)
        }
    }

    @Test("bodies: empty refused, over the limit refused with the limit named", arguments: StoreKind.available)
    func bodies(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        #expect(throws: BrokerError.emptyBody) {
            try broker.send(from: .operator, to: .agent(iris), body: "", inReplyTo: nil)
        }
        let big = String(repeating: "é", count: WireLimits.maxBodyBytes / 2 + 1) // 2 bytes each in UTF-8
        do {
            _ = try broker.send(from: .operator, to: .agent(iris), body: big, inReplyTo: nil)
            Issue.record("oversized body accepted")
        } catch {
            #expect(error.description.contains("\(WireLimits.maxBodyBytes) bytes"))
        }
        let exact = String(repeating: "a", count: WireLimits.maxBodyBytes)
        _ = try broker.send(from: .operator, to: .agent(iris), body: exact, inReplyTo: nil)
    }

    @Test("broadcast: one flagged row per other live agent", arguments: StoreKind.available)
    func broadcast(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        let bob = try t.agent("bob")
        let gone = try t.agent("gone")
        try broker.destroy(gone, purge: false)
        let sent = try broker.send(from: .agent(iris), to: .broadcast, body: "all", inReplyTo: nil)
        #expect(sent.recipients == ["bob", "manager"])
        #expect(sent.ids.count == 2)
        let got = try broker.recv(bob, max: 5, wait: .zero)
        #expect(got.messages.first?.broadcast == true)
        #expect(try broker.recv(iris, max: 5, wait: .zero).messages.isEmpty, "the sender does not get its own broadcast")
    }

    @Test("in_reply_to is kept within a conversation and dropped otherwise, and the message still goes", arguments: StoreKind.available)
    func inReplyTo(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        let bob = try t.agent("bob")
        let eve = try t.agent("eve")
        let original = try broker.send(from: .agent(iris), to: .agent(bob), body: "q", inReplyTo: nil).ids[0]
        let reply = try broker.send(from: .agent(bob), to: .agent(iris), body: "a", inReplyTo: original)
        #expect(reply.inReplyTo == original && reply.inReplyToDropped == nil)

        let nosy = try broker.send(from: .agent(eve), to: .agent(iris), body: "me too", inReplyTo: original)
        #expect(nosy.inReplyTo == nil)
        #expect(nosy.inReplyToDropped?.contains("not part of") == true)
        #expect(nosy.ids.count == 1)

        let unknown = try broker.send(from: .agent(bob), to: .agent(iris), body: "?", inReplyTo: 999_999)
        #expect(unknown.inReplyToDropped?.contains("unknown") == true)

        let got = try broker.recv(iris, max: 10, wait: .zero).messages
        #expect(got.map(\.inReplyTo) == [original, nil, nil])
    }

    @Test("in_reply_to to a swept message is dropped", arguments: StoreKind.available)
    func inReplyToSwept(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        let id = try broker.send(from: .operator, to: .agent(iris), body: "old", inReplyTo: nil).ids[0]
        _ = try broker.recv(iris, max: 1, wait: .zero)
        _ = try broker.ackTurn(iris, ids: [id])
        t.advance(days: 31)
        #expect(try broker.sweep(olderThan: 30 * 86400) == 1)
        let r = try broker.send(from: .agent(iris), to: .operator, body: "re", inReplyTo: id)
        #expect(r.inReplyTo == nil && r.inReplyToDropped != nil)
    }

    @Test("requeue puts in-flight messages back, flagged redelivered; acked ones stay", arguments: StoreKind.available)
    func requeue(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        for b in ["a", "b", "c"] { _ = try broker.send(from: .operator, to: .agent(iris), body: b, inReplyTo: nil) }
        let got = try broker.recv(iris, max: 3, wait: .zero).messages
        _ = try broker.ackTurn(iris, ids: [got[0].id])
        #expect(try broker.requeueInflight(iris) == 2)
        let again = try broker.recv(iris, max: 5, wait: .zero).messages
        #expect(again.map(\.body) == ["b", "c"])
        #expect(again.allSatisfy { $0.redelivered })
    }

    @Test("acks only move this agent's delivered messages; the rest are skipped with a reason", arguments: StoreKind.available)
    func ackRules(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        let bob = try t.agent("bob")
        let mine = try broker.send(from: .operator, to: .agent(iris), body: "x", inReplyTo: nil).ids[0]
        let notYet = try broker.send(from: .operator, to: .agent(iris), body: "y", inReplyTo: nil).ids[0]
        let bobs = try broker.send(from: .operator, to: .agent(bob), body: "z", inReplyTo: nil).ids[0]
        _ = try broker.recv(iris, max: 1, wait: .zero)
        let r = try broker.ackTurn(iris, ids: [mine, notYet, bobs, mine])
        #expect(r.acked == [mine])
        #expect(Set(r.skipped.map(\.id)) == [notYet, bobs])
        #expect(try broker.counts("bob").unread == 1)
        #expect(try broker.counts("iris").unread == 1)
    }

    @Test("a parked recv is woken by the send itself", arguments: StoreKind.available)
    func parkedRecv(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        let start = ContinuousClock.now
        let got = Background { try broker.recv(iris, max: 1, wait: .seconds(20)) }
        Thread.sleep(forTimeInterval: 0.2)
        _ = try broker.send(from: .operator, to: .agent(iris), body: "wake", inReplyTo: nil)
        #expect(try got.join().messages.map(\.body) == ["wake"])
        #expect(ContinuousClock.now - start < .seconds(10), "woken by the send, not by the 20 s timeout")
    }

    @Test("a parked receiver is handed the message in the send's own transaction", arguments: StoreKind.available)
    func handoff(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        let got = Background { try broker.recv(iris, max: 2, wait: .seconds(20)) }
        Thread.sleep(forTimeInterval: 0.2)
        _ = try broker.send(from: .operator, to: .agent(iris), body: "handed", inReplyTo: nil)
        let reply = try got.join()
        #expect(reply.messages.map(\.body) == ["handed"])
        #expect(reply.messages.first?.state == .delivered)
        #expect(try broker.counts("iris") == (0, 1), "stored as delivered, not left pending")
    }

    @Test("receivers timing out while sends hand off never lose a message", arguments: StoreKind.available)
    func handoffRace(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        let stop = Background<Void>.Flag()
        let receivers = (0..<6).map { _ in
            Background {
                var n = 0
                while !stop.isSet {
                    n += try broker.recv(iris, max: 3, wait: .microseconds(Int.random(in: 50...1500))).messages.count
                }
                return n
            }
        }
        let senders = (0..<2).map { s in
            Background { for i in 0..<400 { _ = try broker.send(from: .operator, to: .agent(iris), body: "r\(s)-\(i)", inReplyTo: nil) } }
        }
        for s in senders { try s.join() }
        stop.set()
        let received = try receivers.map { try $0.join() }.reduce(0, +)
        let counts = try broker.counts("iris")
        #expect(counts.inflight == received, "every row marked delivered was returned by some recv")
        #expect(counts.inflight + counts.unread == 800)
    }

    @Test("synchronous NORMAL can be chosen and is what runs")
    func normalSync() throws {
        let dir = FileManager.default.temporaryDirectory.appending(path: "hive-broker-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let b = try Broker(path: dir.appending(path: "b.sqlite").path, synchronous: .normal)
        #expect(try b.synchronousLevel() == Broker.Synchronous.normal.level)
    }

    @Test("a parked recv returns empty when its wait runs out", arguments: StoreKind.available)
    func recvTimeout(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        let start = ContinuousClock.now
        let got = try broker.recv(iris, max: 1, wait: .milliseconds(300))
        #expect(got.messages.isEmpty)
        #expect(ContinuousClock.now - start >= .milliseconds(300))
    }

    @Test("a parked recv whose peer hangs up returns without popping", arguments: StoreKind.available)
    func peerClosed(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        var pair: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { close(pair[0]) }
        let parker = Parker(watching: pair[0])
        let start = ContinuousClock.now
        let got = Background { try broker.recv(iris, max: 1, wait: .seconds(20), parker: parker, mayDeliver: nil) }
        Thread.sleep(forTimeInterval: 0.1)
        close(pair[1])
        #expect(try got.join().messages.isEmpty)
        #expect(ContinuousClock.now - start < .seconds(10), "released by the hang-up, not the timeout")
        _ = try broker.send(from: .operator, to: .agent(iris), body: "later", inReplyTo: nil)
        #expect(try broker.counts("iris").unread == 1, "nothing was popped for a vanished peer")
    }

    @Test("stopping the broker's waiters releases parked receivers", arguments: StoreKind.available)
    func stopAll(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        let got = Background { try broker.recv(iris, max: 1, wait: .seconds(20)) }
        Thread.sleep(forTimeInterval: 0.1)
        broker.releaseReceivers()
        #expect(try got.join().messages.isEmpty)
    }

    @Test("concurrent sends share commits and every one is stored once", arguments: StoreKind.available)
    func groupCommit(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        let senders = (0..<8).map { n in
            Background { try (0..<25).flatMap { i in try broker.send(from: .operator, to: .agent(iris), body: "n\(n)-\(i)", inReplyTo: nil).ids } }
        }
        let ids = try senders.flatMap { try $0.join() }
        #expect(Set(ids).count == 200)
        #expect(try broker.counts("iris").unread == 200)
    }

    @Test("retention sweeps only acked messages past the window, in batches", arguments: StoreKind.available)
    func retention(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        for i in 0..<1203 { _ = try broker.send(from: .operator, to: .agent(iris), body: "old\(i)", inReplyTo: nil) }
        var ids: [Int64] = []
        while true {
            let got = try broker.recv(iris, max: 32, wait: .zero).messages
            if got.isEmpty { break }
            ids += got.map(\.id)
        }
        _ = try broker.ackTurn(iris, ids: Array(ids.prefix(1000)))
        _ = try broker.ackTurn(iris, ids: Array(ids.dropFirst(1000).prefix(200)))
        t.advance(days: 20)
        _ = try broker.send(from: .operator, to: .agent(iris), body: "fresh", inReplyTo: nil)
        #expect(try broker.sweep(olderThan: 30 * 86400, batch: 100, stop: { false }) == 0, "nothing is old enough yet")
        t.advance(days: 11)
        #expect(try broker.sweep(olderThan: 30 * 86400, batch: 100, stop: { false }) == 1200)
        let counts = try broker.counts("iris")
        #expect(counts.inflight == 3, "unacked messages are never swept, however old")
        #expect(counts.unread == 1)
    }

    @Test("the operator's inbox lists newest first and marks messages read", arguments: StoreKind.available)
    func operatorInbox(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        _ = try broker.send(from: .agent(iris), to: .operator, body: "one", inReplyTo: nil)
        _ = try broker.send(from: .agent(iris), to: .operator, body: "two", inReplyTo: nil)
        let first = try broker.operatorInbox(limit: 10)
        #expect(first.map(\.body) == ["two", "one"])
        #expect(first.allSatisfy { $0.state == .pending })
        let second = try broker.operatorInbox(limit: 10)
        #expect(second.allSatisfy { $0.state == .acked })
    }

    @Test("registry: duplicates, tombstones, purge, and a permanent manager", arguments: StoreKind.available)
    func registry(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        #expect(throws: BrokerError.alreadyExists("iris")) { try broker.register(iris) }
        _ = try broker.send(from: .operator, to: .agent(iris), body: "keep", inReplyTo: nil)
        try broker.destroy(iris, purge: false)
        #expect(throws: BrokerError.tombstoneExists("iris")) { try broker.register(iris) }
        #expect(try broker.agents().first { $0.record.name == "iris" }?.unread == 1, "a tombstone keeps its inbox")
        try broker.destroy(iris, purge: true)
        #expect(try broker.agent(iris) == nil)
        _ = try broker.register(iris)
        #expect(try broker.counts("iris").unread == 0, "a purged name starts with an empty inbox")
        #expect(throws: BrokerError.managerIsPermanent) { try broker.destroy(.manager, purge: false) }
        #expect(throws: BrokerError.unknownAgent("nobody")) { try broker.destroy(try AgentName("nobody"), purge: true) }
    }

    @Test("dead letters: only delivered messages of the agent, never handed out again, swept with retention", arguments: StoreKind.available)
    func deadLetters(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        let a = try broker.send(from: .operator, to: .agent(iris), body: "poison", inReplyTo: nil).ids[0]
        let b = try broker.send(from: .operator, to: .agent(iris), body: "fine", inReplyTo: nil).ids[0]
        _ = try broker.recv(iris, max: 1, wait: .zero)
        let (reply, dead) = try broker.deadLetter(iris, ids: [a, b, 999], reason: "5 failed turns: API Error")
        #expect(reply.dead == [a])
        #expect(Set(reply.skipped.map(\.id)) == [b, 999])
        #expect(dead.first?.state == .dead && dead.first?.deadReason == "5 failed turns: API Error")
        #expect(try broker.requeueInflight(iris) == 0, "a dead letter is not in flight")
        #expect(try broker.recv(iris, max: 5, wait: .zero).messages.map(\.body) == ["fine"])
        #expect(try broker.agents().first { $0.record.name == "iris" }?.dead == 1)
        t.advance(days: 31)
        #expect(try broker.sweep(olderThan: 30 * 86400) == 1)
    }

    @Test("system notices are sent as 'system'", arguments: StoreKind.available)
    func systemSender(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        _ = try broker.send(from: .system, to: .agent(iris), body: "container rebuilt", inReplyTo: nil)
        #expect(try broker.recv(iris, max: 1, wait: .zero).messages.first?.from == "system")
    }

    @Test("recent shows what an agent sent and received, newest first", arguments: StoreKind.available)
    func recent(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        let bob = try t.agent("bob")
        _ = try broker.send(from: .agent(iris), to: .agent(bob), body: "1", inReplyTo: nil)
        _ = try broker.send(from: .agent(bob), to: .agent(iris), body: "2", inReplyTo: nil)
        _ = try broker.send(from: .operator, to: .agent(bob), body: "3", inReplyTo: nil)
        #expect(try broker.recent("iris", limit: 10).map(\.body) == ["2", "1"])
        #expect(try broker.recent("bob", limit: 2).map(\.body) == ["3", "2"])
    }
}

@Suite("Broker migrations")
struct MigrationTests {
    @Test("a database from the first schema keeps its messages through later migrations")
    func upgrade() throws {
        let dir = FileManager.default.temporaryDirectory.appending(path: "hive-mig-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appending(path: "broker.sqlite").path
        let old = try DatabaseQueue(path: path)
        try Schema.migrator.migrate(old, upTo: "v1-agents-and-messages")
        try old.write { db in
            try db.execute(sql: "INSERT INTO agent (name, created_at) VALUES ('iris', 1)")
            try db.execute(sql: "INSERT INTO message (sender, recipient, body, sent_at) VALUES ('operator', 'iris', 'from v1', 1)")
        }
        try old.close()
        let broker = try Broker(path: path)
        let got = try broker.recv(try AgentName("iris"), max: 5, wait: .zero)
        #expect(got.messages.map(\.body) == ["from v1"])
    }
}
