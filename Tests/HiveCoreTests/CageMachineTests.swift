@testable import HiveCore
import Testing

/// The cage supervisor's specification: what core does when an agent's cage is started, comes up,
/// fails, exits or is stopped. No processes and no timers; times are unix seconds given with the events.
@Suite("the cage machine")
struct CageMachineTests {
    @Test("a start launches; a second start while it launches or runs does nothing")
    func start() {
        var m = CageMachine()
        #expect(m.handle(.start) == .launch)
        #expect(m.handle(.start) == .none)
        #expect(m.handle(.launched(now: 100)) == .none)
        #expect(m.phase == .running(since: 100))
        #expect(m.handle(.start) == .none)
    }

    @Test("a cage that exits is relaunched after 1, 2, 4 ... s, at most 60; the manager hears of the first crash only, within ten minutes")
    func crashLoop() {
        var m = CageMachine()
        _ = m.handle(.start)
        var now = 0.0
        var delays: [Double] = []
        var notices: [Bool] = []
        for _ in 0..<8 {
            _ = m.handle(.launched(now: now))
            now += 5
            guard case .relaunch(let delay, let notice) = m.handle(.exited(now: now)) else { Issue.record("no relaunch"); return }
            delays.append(delay)
            notices.append(notice)
            #expect(m.handle(.relaunchDue) == .launch)
        }
        #expect(delays == [1, 2, 4, 8, 16, 32, 60, 60])
        #expect(notices == [true, false, false, false, false, false, false, false])
    }

    @Test("a crash ten minutes after the last notice is told again")
    func noticeAgain() {
        var m = CageMachine()
        _ = m.handle(.start)
        _ = m.handle(.launched(now: 0))
        #expect(m.handle(.exited(now: 1)) == .relaunch(after: 1, notice: true))
        _ = m.handle(.relaunchDue)
        _ = m.handle(.launched(now: 2))
        #expect(m.handle(.exited(now: 3)) == .relaunch(after: 2, notice: false))
        _ = m.handle(.relaunchDue)
        _ = m.handle(.launched(now: 590))
        #expect(m.handle(.exited(now: 602)) == .relaunch(after: 4, notice: true))
    }

    @Test("a harness that ran for over two minutes earns a fresh backoff")
    func stableResets() {
        var m = CageMachine()
        _ = m.handle(.start)
        _ = m.handle(.launched(now: 0))
        _ = m.handle(.exited(now: 1))
        _ = m.handle(.relaunchDue)
        _ = m.handle(.launched(now: 2))
        #expect(m.handle(.exited(now: 3)) == .relaunch(after: 2, notice: false))
        _ = m.handle(.relaunchDue)
        _ = m.handle(.launched(now: 10))
        #expect(m.handle(.exited(now: 200)) == .relaunch(after: 1, notice: false))
    }

    @Test("a planned stop is not a crash: no relaunch, and a due relaunch is dropped")
    func plannedStop() {
        var m = CageMachine()
        _ = m.handle(.start)
        _ = m.handle(.launched(now: 0))
        #expect(m.handle(.stop) == .none)
        #expect(m.handle(.exited(now: 1)) == .none)
        #expect(m.handle(.relaunchDue) == .none)

        var n = CageMachine()
        _ = n.handle(.start)
        _ = n.handle(.launched(now: 0))
        _ = n.handle(.exited(now: 1))
        _ = n.handle(.stop)
        #expect(n.handle(.relaunchDue) == .none, "stopped while it waited to relaunch")
    }

    @Test("a cage that comes up after it was stopped is put down")
    func stoppedWhileLaunching() {
        var m = CageMachine()
        _ = m.handle(.start)
        _ = m.handle(.stop)
        #expect(m.handle(.launched(now: 0)) == .terminate)
    }

    @Test("a start after a stop begins afresh: the crash history is forgotten")
    func startAfterStop() {
        var m = CageMachine()
        _ = m.handle(.start)
        _ = m.handle(.launched(now: 0))
        _ = m.handle(.exited(now: 1))
        _ = m.handle(.relaunchDue)
        _ = m.handle(.launched(now: 2))
        _ = m.handle(.stop)
        #expect(m.handle(.start) == .launch)
        _ = m.handle(.launched(now: 3))
        #expect(m.handle(.exited(now: 4)) == .relaunch(after: 1, notice: true))
    }

    @Test("a cage that cannot be prepared stays down until started; one that cannot be launched is retried in 30 s")
    func failures() {
        var m = CageMachine()
        _ = m.handle(.start)
        #expect(m.handle(.prepareFailed) == .none)
        #expect(m.phase == .down)
        #expect(m.handle(.relaunchDue) == .none)
        #expect(m.handle(.start) == .launch)
        #expect(m.handle(.launchFailed) == .relaunch(after: 30, notice: false))
        #expect(m.handle(.relaunchDue) == .launch)
    }

    @Test("a relaunch that comes due after someone started it meanwhile does nothing")
    func relaunchRace() {
        var m = CageMachine()
        _ = m.handle(.start)
        _ = m.handle(.launched(now: 0))
        _ = m.handle(.exited(now: 1))
        #expect(m.handle(.start) == .launch)
        #expect(m.handle(.relaunchDue) == .none)
    }
}
