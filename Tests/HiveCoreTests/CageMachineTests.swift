@testable import HiveCore
import Testing

/// The cage supervisor's specification: what core does when an agent's cage is started, comes up,
/// fails, exits or is stopped. No processes and no timers; times are unix seconds given with the events.
@Suite("the cage machine")
struct CageMachineTests {
    /// Starts `m` and brings its launch up at `now`.
    func up(_ m: inout CageMachine, at now: Double) {
        guard case .launch(let g) = m.handle(.start) else { Issue.record("no launch"); return }
        #expect(m.handle(.launched(g, now: now)) == .none)
    }

    /// Its running cage exits at `now`; returns the relaunch and carries it out (launched at `now`).
    @discardableResult
    func crash(_ m: inout CageMachine, at now: Double) -> (delay: Double, notice: Bool)? {
        guard case .relaunch(let delay, let notice, let g) = m.handle(.exited(now: now)) else { Issue.record("no relaunch"); return nil }
        guard case .launch(let next) = m.handle(.relaunchDue(g)) else { Issue.record("the relaunch did not launch"); return nil }
        #expect(m.handle(.launched(next, now: now)) == .none)
        return (delay, notice)
    }

    @Test("a start launches; a second start while it launches or runs does nothing")
    func start() {
        var m = CageMachine()
        #expect(m.handle(.start) == .launch(1))
        #expect(m.handle(.start) == .none)
        #expect(m.handle(.launched(1, now: 100)) == .none)
        #expect(m.phase == .running(since: 100))
        #expect(m.handle(.start) == .none)
    }

    @Test("a cage that exits is relaunched after 1, 2, 4 ... s, at most 60; the manager hears of the first crash only, within ten minutes")
    func crashLoop() {
        var m = CageMachine()
        up(&m, at: 0)
        let runs = (1...8).compactMap { crash(&m, at: Double($0) * 5) }
        #expect(runs.map(\.delay) == [1, 2, 4, 8, 16, 32, 60, 60])
        #expect(runs.map(\.notice) == [true, false, false, false, false, false, false, false])
    }

    @Test("a crash ten minutes after the last notice is told again; one after two stable minutes starts the backoff afresh")
    func noticeAndBackoffReset() {
        var m = CageMachine()
        up(&m, at: 0)
        #expect(crash(&m, at: 1)?.notice == true)
        #expect(crash(&m, at: 3)?.delay == 2)
        #expect(crash(&m, at: 602).map { [$0.delay, $0.notice ? 1 : 0] } == [1, 1], "ran 599 s: fresh backoff, and told again")
    }

    @Test("a planned stop is not a crash: no relaunch, and a relaunch that comes due later is dropped")
    func plannedStop() {
        var m = CageMachine()
        up(&m, at: 0)
        #expect(m.handle(.stop) == .none)
        #expect(m.handle(.exited(now: 1)) == .none)

        var n = CageMachine()
        up(&n, at: 0)
        guard case .relaunch(_, _, let g) = n.handle(.exited(now: 1)) else { Issue.record("no relaunch"); return }
        _ = n.handle(.stop)
        #expect(n.handle(.relaunchDue(g)) == .none, "stopped while it waited to relaunch")
    }

    @Test("a cage that comes up after it was stopped, or after a restart superseded its launch, is put down")
    func supersededLaunches() {
        var m = CageMachine()
        _ = m.handle(.start)
        _ = m.handle(.stop)
        #expect(m.handle(.launched(1, now: 0)) == .terminate)

        // A restart while the first launch still prepares: only the second launch may run.
        var r = CageMachine()
        #expect(r.handle(.start) == .launch(1))
        _ = r.handle(.stop)
        #expect(r.handle(.start) == .launch(3))
        #expect(r.handle(.launched(1, now: 0)) == .terminate, "the old config's cage does not take the slot")
        #expect(r.handle(.prepareFailed(1)) == .none)
        #expect(r.phase == .launching, "a stale failure does not take the new launch down")
        #expect(r.handle(.launchFailed(1)) == .none)
        #expect(r.handle(.launched(3, now: 1)) == .none)
        #expect(r.phase == .running(since: 1))
    }

    @Test("a start after a stop begins afresh: the crash history is forgotten")
    func startAfterStop() {
        var m = CageMachine()
        up(&m, at: 0)
        crash(&m, at: 1)
        _ = m.handle(.stop)
        up(&m, at: 3)
        guard case .relaunch(1, true, _) = m.handle(.exited(now: 4)) else { Issue.record("not a first crash"); return }
    }

    @Test("a cage that cannot be prepared stays down until started; one that cannot be launched is retried in 30 s")
    func failures() {
        var m = CageMachine()
        guard case .launch(let g) = m.handle(.start) else { Issue.record("no launch"); return }
        #expect(m.handle(.prepareFailed(g)) == .none)
        #expect(m.phase == .down)
        #expect(m.handle(.relaunchDue(g)) == .none)
        guard case .launch(let h) = m.handle(.start) else { Issue.record("no launch"); return }
        guard case .relaunch(30, false, let retry) = m.handle(.launchFailed(h)) else { Issue.record("no retry"); return }
        #expect(m.handle(.relaunchDue(retry)) == .launch(retry + 1))
    }

    @Test("a relaunch that comes due after someone started it meanwhile, or an older timer, does nothing")
    func staleTimers() {
        var m = CageMachine()
        up(&m, at: 0)
        guard case .relaunch(_, _, let first) = m.handle(.exited(now: 1)) else { Issue.record("no relaunch"); return }
        guard case .launch(let g) = m.handle(.start) else { Issue.record("a start while waiting launches"); return }
        #expect(m.handle(.relaunchDue(first)) == .none)
        #expect(m.handle(.launched(g, now: 2)) == .none)
        guard case .relaunch(_, _, let second) = m.handle(.exited(now: 3)) else { Issue.record("no relaunch"); return }
        #expect(m.handle(.relaunchDue(first)) == .none, "the first timer cannot cut the second wait short")
        #expect(m.handle(.relaunchDue(second)) != .none)
    }
}
