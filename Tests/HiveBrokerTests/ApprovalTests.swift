import Foundation
import HiveBroker
import HiveWire
import Testing

@Suite("Approvals")
struct ApprovalTests {
    @Test("the lifecycle: pending → approved → deployed | failed; pending → denied; nothing else")
    func lifecycle() {
        var allowed: [String] = []
        for state in ApprovalState.allCases {
            for event in [ApprovalEvent.approve, .deny, .succeed, .fail] {
                if let next = ApprovalLifecycle.apply(event, to: state).next { allowed.append("\(state.rawValue)-\(event)->\(next.rawValue)") }
            }
        }
        #expect(allowed.sorted() == ["approved-fail->failed", "approved-succeed->deployed", "pending-approve->approved", "pending-deny->denied"])
        #expect(ApprovalState.allCases.filter(\.isFinal) == [.denied, .deployed, .failed])
    }

    func broker() throws -> (Broker, URL) {
        let dir = FileManager.default.temporaryDirectory.appending(path: "approvals-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return (try Broker(path: dir.appending(path: "b.sqlite").path), dir)
    }

    @Test("a state or kind this build does not know (a newer hive's database) reads as failed, never a crash")
    func unknownStrings() throws {
        let (b, dir) = try broker()
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = try b.createApproval(kind: .initConfig, agent: try AgentName("iris"), commit: nil, description: nil, diff: nil, requestedBy: "manager")
        try b.pool.write { try $0.execute(sql: "UPDATE approval SET state = 'escalated', kind = 'rename_agent' WHERE id = ?", arguments: [a.id]) }
        let read = try #require(try b.approval(a.id))
        #expect(read.state == .failed && read.kind == .applyCommit)
        #expect(try b.approvals(recent: 5).map(\.id) == [a.id])
    }

    /// A store of `kind` on fresh storage with the wall clock (what `Broker(path:)` uses by default).
    func store(_ kind: StoreKind) throws -> MadeStore {
        try makeStore(kind, clock: { Date().timeIntervalSince1970 })
    }

    @Test("one open request per agent and kind; approving twice is refused; resolved ones leave the pending list", arguments: StoreKind.available)
    func queue(kind: StoreKind) throws {
        let made = try store(kind)
        defer { made.cleanup() }
        let b = made.store
        let iris = try AgentName("iris")
        let a = try b.createApproval(kind: .initConfig, agent: iris, commit: nil, description: "d", diff: nil, requestedBy: "manager")
        #expect(a.state == .pending && a.kind == .initConfig)
        #expect(throws: RequestError.self) {
            try b.createApproval(kind: .initConfig, agent: iris, commit: nil, description: nil, diff: nil, requestedBy: "manager")
        }
        let apply = try b.createApproval(kind: .applyCommit, agent: iris, commit: String(repeating: "a", count: 40), description: nil,
                                         diff: "+x", requestedBy: "manager")
        #expect(try b.approvals().map(\.id) == [a.id, apply.id])
        #expect(try b.resolveApproval(a.id, .approve).state == .approved)
        #expect(throws: BrokerError.self) { try b.resolveApproval(a.id, .approve) }
        #expect(try b.resolveApproval(a.id, .succeed).resolvedAt != nil)
        #expect(try b.resolveApproval(apply.id, .deny, note: "no").note == "no")
        #expect(try b.approvals().isEmpty)
        #expect(try b.approvals(recent: 10).map(\.state) == [.deployed, .denied])
        #expect(throws: BrokerError.self) { try b.resolveApproval(999, .approve) }
    }

    @Test("approvals core was carrying out when it stopped are failed at the next boot", arguments: StoreKind.available)
    func interrupted(kind: StoreKind) throws {
        let made = try store(kind)
        defer { made.cleanup() }
        let b = made.store
        let a = try b.createApproval(kind: .applyCommit, agent: try AgentName("iris"), commit: "abc1234", description: nil, diff: nil, requestedBy: "manager")
        _ = try b.resolveApproval(a.id, .approve)
        let failed = try b.failInterruptedApprovals()
        #expect(failed.map(\.state) == [.failed])
        #expect(failed.first?.note?.contains("core stopped") == true)
    }
}
