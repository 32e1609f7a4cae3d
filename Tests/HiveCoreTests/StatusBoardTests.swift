@testable import HiveCore
import HiveWire
import Synchronization
import Testing

/// Since when an agent is in the state `list` shows (the dashboard's elapsed turn time), on a clock the
/// test moves. No sockets.
@Suite("the status board's clock")
struct StatusBoardTests {
    @Test("a state's clock starts when the state changes, not at each report; the supervisor stepping in restarts it")
    func since() throws {
        let now = Mutex(10.0)
        let board = AgentStatusBoard(clock: { now.withLock { $0 } })
        let iris = try AgentName("iris")
        func at(_ t: Double) { now.withLock { $0 = t } }
        board.report(iris, ReportStateCommand(state: .thinking))
        at(20)
        board.report(iris, ReportStateCommand(state: .thinking, detail: "still"))
        #expect(board.state(of: iris, connected: true).since == 10, "a repeated report keeps the turn's start")
        at(30)
        board.report(iris, ReportStateCommand(state: .idle))
        #expect(board.state(of: iris, connected: true).since == 30)
        at(40)
        board.supervisor(iris, state: .restarting)
        #expect(board.state(of: iris, connected: false).state == .restarting)
        #expect(board.state(of: iris, connected: false).since == 40, "with nothing connected, the supervisor's clock")
        at(50)
        board.report(iris, ReportStateCommand(state: .idle))
        #expect(board.state(of: iris, connected: true).since == 50, "after a restart the same state starts anew")
        #expect(board.state(of: try AgentName("bob"), connected: true).since == nil, "never seen: unknown")
    }
}
