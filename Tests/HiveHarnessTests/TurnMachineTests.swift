import HiveHarness
import HiveWire
import Testing

/// The turn machine's specification: what the harness does with one message after each kind of turn.
/// No claude, no socket, no clock: `now` is 1000 and the jitter draw is 0.5 (Backoff's middle, ×1.0).
@Suite("the turn machine")
struct TurnMachineTests {
    static let now = 1000.0

    func machine(_ edit: (inout TurnMachine.Rules) -> Void = { _ in }) -> TurnMachine {
        var rules = TurnMachine.Rules()
        rules.agent = "iris"
        rules.maxFailures = 3
        rules.transientRetries = 2
        rules.failureBackoff = Backoff(base: 5, cap: 300)
        rules.transientBackoff = Backoff(base: 2, cap: 60)
        rules.rateLimitJitter = 60
        edit(&rules)
        return TurnMachine(rules: rules)
    }

    func ended(_ outcome: TurnOutcome, _ ending: TurnMachine.Ending = .finished) -> TurnMachine.Event {
        .turnEnded(outcome, ending, now: Self.now, random: 0.5)
    }

    @Test("a new message starts with a turn in the current session; a good turn is acked")
    func ok() {
        var m = machine()
        #expect(m.start == .runTurn(fresh: false))
        #expect(m.handle(ended(.ok)) == .ack)
    }

    @Test("a good result is acked even when the run was then cancelled or timed out")
    func okWins() {
        var m = machine()
        #expect(m.handle(ended(.ok, .cancelled)) == .ack)
        #expect(m.handle(ended(.ok, .timedOut(seconds: 1800))) == .ack)
    }

    @Test("a failed turn backs off (doubling) and retries; at the limit the message is dead-lettered with the last reason")
    func retryThenDeadLetter() {
        var m = machine()
        #expect(m.handle(ended(.failed("boom 1"))) == .wait(seconds: 5, .init(.backoff, detail: "turn failed (1/3), retrying in 5 s: boom 1")))
        #expect(m.handle(.waited) == .runTurn(fresh: false))
        #expect(m.handle(ended(.failed("boom 2"))) == .wait(seconds: 10, .init(.backoff, detail: "turn failed (2/3), retrying in 10 s: boom 2")))
        #expect(m.handle(.waited) == .runTurn(fresh: false))
        #expect(m.handle(ended(.failed("boom 3"))) == .deadLetter(reason: "3 failed turns; last: boom 3"))
    }

    @Test("a dead letter's reason is bounded")
    func deadLetterReasonBounded() {
        var m = machine { $0.maxFailures = 1 }
        guard case .deadLetter(let reason) = m.handle(ended(.failed(String(repeating: "x", count: 5000)))) else {
            Issue.record("expected a dead letter"); return
        }
        #expect(reason.utf8.count < 600)
    }

    @Test("a usage limit parks until its reset plus jitter, then retries without counting a failure")
    func parkUntilReset() {
        var m = machine()
        let action = m.handle(ended(.rateLimited(until: 5000, window: "five_hour")))
        #expect(action == .wait(seconds: 4030, .init(.rateLimited, until: 5030, window: "five_hour", detail: "limit hit; resuming after the reset")))
        #expect(m.handle(.waited) == .runTurn(fresh: false))
        #expect(m.failures == 0)
    }

    @Test("a limit without a reset time re-probes after the reprobe interval; a reset in the past waits at least a second")
    func parkUnknownOrPast() {
        var m = machine { $0.rateLimitJitter = 0 }
        #expect(m.handle(ended(.rateLimited(until: nil))) == .wait(seconds: 3600, .init(.rateLimited, until: 4600,
            detail: "limit hit; no reset time given, re-probing in an hour")))
        #expect(m.handle(ended(.rateLimited(until: 10))) == .wait(seconds: 1, .init(.rateLimited, until: 1001,
            detail: "limit hit; resuming after the reset")))
    }

    @Test("the operator's park cap shortens a long park")
    func parkCap() {
        var m = machine { $0.parkCap = 30 }
        guard case .wait(let seconds, let report) = m.handle(ended(.rateLimited(until: 90_000))) else { Issue.record("no wait"); return }
        #expect(seconds == 30)
        #expect(report.until == 1030)
    }

    @Test("prompt too long: compact once, then retry in the same session")
    func compactThenRetry() {
        var m = machine()
        #expect(m.handle(ended(.promptTooLong)) == .compact)
        #expect(m.handle(.compacted(true, random: 0.5)) == .runTurn(fresh: false))
        #expect(m.failures == 0)
    }

    @Test("still too long after compacting (or compaction failed): a failed turn, and the next one starts a fresh session")
    func freshSession() {
        var m = machine()
        #expect(m.handle(ended(.promptTooLong)) == .compact)
        #expect(m.handle(.compacted(true, random: 0.5)) == .runTurn(fresh: false))
        #expect(m.handle(ended(.promptTooLong)) == .wait(seconds: 5, .init(.backoff,
            detail: "turn failed (1/3), retrying in 5 s: prompt too long even after compaction")))
        #expect(m.handle(.waited) == .runTurn(fresh: true))
        #expect(m.handle(ended(.failed("other"))) != .compact)
        #expect(m.handle(.waited) == .runTurn(fresh: false), "fresh is one shot")

        var n = machine()
        #expect(n.handle(ended(.promptTooLong)) == .compact)
        guard case .wait = n.handle(.compacted(false, random: 0.5)) else { Issue.record("a failed compaction is a failed turn"); return }
        #expect(n.handle(.waited) == .runTurn(fresh: true))
        // claude vanishing before that turn keeps the fresh session asked for.
        #expect(n.handle(.claudeMissing) == .awaitClaude(seconds: 60))
        #expect(n.handle(.waited) == .runTurn(fresh: true))
    }

    @Test("transient errors back off without counting; a run longer than the retries counts as one failure")
    func transient() {
        var m = machine()
        #expect(m.handle(ended(.transient("overloaded"))) == .wait(seconds: 2, .init(.backoff, detail: "transient API error, retrying in 2 s: overloaded")))
        #expect(m.handle(ended(.transient("overloaded"))) == .wait(seconds: 4, .init(.backoff, detail: "transient API error, retrying in 4 s: overloaded")))
        #expect(m.failures == 0)
        #expect(m.handle(ended(.transient("overloaded"))) == .wait(seconds: 5, .init(.backoff, detail: "turn failed (1/3), retrying in 5 s: overloaded")))
        #expect(m.failures == 1 && m.transient == 0)
    }

    @Test("a cancelled turn and a timed-out turn are failed turns, and say so")
    func cancelledAndTimedOut() {
        var m = machine()
        #expect(m.handle(ended(.failed("claude was stopped before it finished"), .cancelled)) == .wait(seconds: 5, .init(.backoff,
            detail: "turn failed (1/3), retrying in 5 s: cancelled by the operator")))
        #expect(m.handle(ended(.failed("claude was stopped before it finished"), .timedOut(seconds: 1800))) == .wait(seconds: 10, .init(.backoff,
            detail: "turn failed (2/3), retrying in 10 s: timed out after 1800 s")))
        #expect(m.handle(ended(.failed("x"), .timedOut(seconds: 60))) == .deadLetter(reason: "3 failed turns; last: timed out after 60 s"))
    }

    @Test("what the stream said still decides for a stopped run: a limit seen before the timeout parks, uncounted")
    func stoppedRunKeepsItsOutcome() {
        var m = machine { $0.rateLimitJitter = 0 }
        #expect(m.handle(ended(.rateLimited(until: 2000), .timedOut(seconds: 60))) == .wait(seconds: 1000, .init(.rateLimited, until: 2000,
            detail: "limit hit; resuming after the reset")))
        guard case .wait(_, let report) = m.handle(ended(.transient("overloaded"), .cancelled)) else { Issue.record("no wait"); return }
        #expect(report.detail?.hasPrefix("transient API error") == true)
        #expect(m.failures == 0)
    }

    @Test("out of credit waits for `hive resume`; not logged in re-checks; neither counts against the message")
    func operatorWaits() {
        var m = machine()
        #expect(m.handle(ended(.needsBilling("Credit balance is too low"))) == .waitForResume(seconds: 3600, .init(.needsBilling,
            detail: "Credit balance is too low — add credit or raise the spending limit, then `hive resume iris`")))
        #expect(m.handle(.waited) == .runTurn(fresh: false))
        guard case .wait(60, let report) = m.handle(ended(.needsLogin("Invalid API key"))) else { Issue.record("no wait"); return }
        #expect(report.state == .needsLogin)
        #expect(report.detail?.hasSuffix("then `hive restart iris`") == true)
        #expect(m.failures == 0)
    }

    @Test("claude missing: wait and look again, the message stays in hand")
    func claudeMissing() {
        var m = machine { $0.setupRecheck = 7 }
        #expect(m.handle(.claudeMissing) == .awaitClaude(seconds: 7))
        #expect(m.handle(.waited) == .runTurn(fresh: false))
        #expect(m.failures == 0)
    }
}
