import Foundation
@testable import HiveBroker
import HiveWire
import Testing

@Suite("Reminders in the broker")
struct ReminderTests {
    /// nil when a token was taken, else the seconds to wait.
    func wait(_ r: Result<Void, TokenBucket.Wait>) -> Double? {
        if case .failure(let w) = r { return w.seconds }
        return nil
    }

    @Test("token bucket: burst, refill with the clock, and how long to wait")
    func bucket() {
        var b = TokenBucket(burst: 3, refillPerSecond: 0.5, now: 100)
        for _ in 0..<3 { #expect(wait(b.take(now: 100)) == nil) }
        #expect(wait(b.take(now: 100)) == 2)
        #expect(wait(b.take(now: 101)) == 1)
        #expect(wait(b.take(now: 102)) == nil)
        #expect(wait(b.take(now: 1000)) == nil, "refills up to the burst")
        #expect(b.tokens == 2)
        var never = TokenBucket(burst: 1, refillPerSecond: 0, now: 0)
        _ = never.take(now: 0)
        #expect(wait(never.take(now: 5)) == .infinity)
    }

    @Test("due reminders fire in due order as messages from 'reminder'; future ones wait", arguments: StoreKind.available)
    func ordering(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        let now = t.clock.read()
        _ = try broker.createReminder(iris, body: "second", filePath: nil, dueAt: now + 20, cap: 10)
        _ = try broker.createReminder(iris, body: "first", filePath: "/shared/plan.md", dueAt: now + 10, cap: 10)
        _ = try broker.createReminder(iris, body: "later", filePath: nil, dueAt: now + 3600, cap: 10)
        #expect(try broker.nextReminderDue() == now + 10)
        #expect(try broker.deliverDueReminders(limit: 10) == (0, 0))
        t.clock.advance(days: 30.0 / 86400)
        #expect(try broker.deliverDueReminders(limit: 10) == (2, 0))
        let got = try broker.recv(iris, max: 5, wait: .zero).messages
        #expect(got.map(\.from) == ["reminder", "reminder"])
        #expect(got[0].body.hasSuffix("first\n(Path you attached: /shared/plan.md)"))
        #expect(got[1].body.hasSuffix("second"))
        #expect(try broker.pendingReminderCount(iris) == 1)
        #expect(try broker.reminderRollup(iris, since: 3600) == .init(attempts: 2, successes: 2, failures: 0))
    }

    @Test("a flood from one agent does not starve another: batches take turns across agents", arguments: StoreKind.available)
    func fairness(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let flood = try t.agent("flood")
        let quiet = try t.agent("quiet")
        let now = t.clock.read()
        for i in 0..<300 { _ = try broker.createReminder(flood, body: "f\(i)", filePath: nil, dueAt: now - 100 + Double(i) * 0.01, cap: 1000) }
        _ = try broker.createReminder(quiet, body: "mine", filePath: nil, dueAt: now, cap: 1000)
        #expect(try broker.deliverDueReminders(limit: 10) == (10, 0))
        #expect(try broker.counts("quiet").unread == 1, "the quiet agent's reminder is in the first batch despite being due last")
        #expect(try broker.counts("flood").unread == 9)
    }

    @Test("purging an agent removes its reminders", arguments: StoreKind.available)
    func purge(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        _ = try broker.createReminder(iris, body: "a", filePath: nil, dueAt: t.clock.read() + 5, cap: 5)
        try broker.destroy(iris, purge: true)
        #expect(try broker.pendingReminders().isEmpty)
        #expect(throws: BrokerError.unknownAgent("iris"), "a purged agent's late remind is refused, not orphaned") {
            try broker.createReminder(iris, body: "late", filePath: nil, dueAt: t.clock.read(), cap: 5)
        }
    }

    @Test("the cap refuses with the limit named; cancel; a destroyed agent's reminder fails with the reason", arguments: StoreKind.available)
    func capCancelFail(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        let now = t.clock.read()
        _ = try broker.createReminder(iris, body: "a", filePath: nil, dueAt: now + 5, cap: 2)
        let (b, _) = try broker.createReminder(iris, body: "b", filePath: nil, dueAt: now + 5, cap: 2)
        #expect(throws: BrokerError.reminderCap(2)) { try broker.createReminder(iris, body: "c", filePath: nil, dueAt: now + 5, cap: 2) }
        try broker.cancelReminder(b)
        #expect(throws: BrokerError.noSuchReminder(b, state: "cancelled")) { try broker.cancelReminder(b) }
        try broker.destroy(iris, purge: false)
        t.clock.advance(days: 1)
        #expect(try broker.deliverDueReminders(limit: 10) == (0, 1))
        #expect(try broker.reminderRollup(iris, since: 86400 * 2) == .init(attempts: 1, successes: 0, failures: 1))
        t.clock.advance(days: 31)
        #expect(try broker.sweepReminders(olderThan: 30 * 86400) == 3, "delivered-or-failed, cancelled and the attempt row")
    }
}
