import HiveBroker
import HiveWire
import Testing

@Suite("Message lifecycle")
struct MessageLifecycleTests {
    @Test("pending → delivered → acked")
    func happyPath() {
        var m = MessageLifecycle()
        #expect(m.apply(.deliver) == .moved(to: .delivered))
        #expect(m.apply(.ack) == .moved(to: .acked))
        #expect(m.state == .acked)
        #expect(!m.redelivered)
    }

    @Test("requeue puts a delivered message back to pending, flagged redelivered")
    func requeue() {
        var m = MessageLifecycle(state: .delivered)
        #expect(m.apply(.requeue) == .moved(to: .pending))
        #expect(m.state == .pending && m.redelivered)
        #expect(m.apply(.deliver) == .moved(to: .delivered))
        #expect(m.redelivered, "the flag survives the next delivery")
    }

    @Test("nothing is acked before a turn could have run on it")
    func noEarlyAck() {
        var m = MessageLifecycle()
        guard case .refused = m.apply(.ack) else { Issue.record("pending message was acked"); return }
        #expect(m.state == .pending)
    }

    @Test("acking twice and requeueing what is not in flight change nothing")
    func idempotent() {
        var acked = MessageLifecycle(state: .acked)
        #expect(acked.apply(.ack) == .unchanged)
        #expect(acked.apply(.requeue) == .unchanged)
        #expect(acked.state == .acked)
        var pending = MessageLifecycle()
        #expect(pending.apply(.requeue) == .unchanged)
        #expect(!pending.redelivered)
    }

    @Test("a message cannot be handed out twice")
    func noDoubleDelivery() {
        var m = MessageLifecycle(state: .delivered)
        guard case .refused = m.apply(.deliver) else { Issue.record("delivered twice"); return }
        var a = MessageLifecycle(state: .acked)
        guard case .refused = a.apply(.deliver) else { Issue.record("acked message delivered"); return }
    }

    @Test("a delivered message can be dead-lettered, and then is never handed out or acked")
    func deadLetter() {
        var m = MessageLifecycle(state: .delivered)
        #expect(m.apply(.deadLetter) == .moved(to: .dead))
        guard case .refused = m.apply(.deliver) else { Issue.record("dead letter delivered"); return }
        guard case .refused = m.apply(.ack) else { Issue.record("dead letter acked"); return }
        #expect(m.apply(.requeue) == .unchanged)
        var p = MessageLifecycle()
        guard case .refused = p.apply(.deadLetter) else { Issue.record("pending message dead-lettered"); return }
    }

    @Test("state is read off the row's timestamps")
    func fromColumns() {
        #expect(MessageState(deliveredAt: nil, ackedAt: nil) == .pending)
        #expect(MessageState(deliveredAt: 1, ackedAt: nil) == .delivered)
        #expect(MessageState(deliveredAt: 1, ackedAt: 2) == .acked)
        #expect(MessageState(deliveredAt: 1, ackedAt: nil, deadAt: 3) == .dead)
    }
}
