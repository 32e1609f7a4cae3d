import Foundation
import HiveWire
import Testing

/// The wire's typed states and null-keeping fields: what goes out comes back the same, nulls are
/// written, and states read as the strings they always were.
@Suite("wire states")
struct WireStatesTests {
    static let message = MessageView(id: 7, from: "iris", to: "operator", body: "hi", sentAt: 1, deliveredAt: nil, ackedAt: nil,
                                     inReplyTo: nil, broadcast: false, redelivered: false, state: .pending)

    func line(_ value: some Encodable) throws -> String { String(decoding: try WireCoding.encoder().encode(value), as: UTF8.self) }

    @Test("absent optionals are written as null, and read back from null or from a missing key")
    func nulls() throws {
        let text = try line(Self.message)
        #expect(text.contains(#""acked_at":null"#) && text.contains(#""dead_reason":null"#) && text.contains(#""state":"pending""#))
        #expect(try WireCoding.decoder().decode(MessageView.self, from: Data(text.utf8)) == Self.message)
        let missing = #"{"id":7,"from":"iris","to":"operator","body":"hi","sent_at":1,"broadcast":false,"redelivered":false,"state":"pending"}"#
        #expect(try WireCoding.decoder().decode(MessageView.self, from: Data(missing.utf8)) == Self.message)
    }

    @Test("a dashboard event carries its kind and its payload under the kind's key, and reads back")
    func events() throws {
        var agent = AgentSummary(name: "iris", state: .rateLimited, unread: 1, inflight: 0, rateLimitedUntil: 5, createdAt: 0)
        agent.cliVersion = "2.1.332"
        for event in [DashboardEvent(seq: 1, .message(Self.message)), DashboardEvent(seq: 2, .messageState(Self.message)),
                      DashboardEvent(seq: 3, .agents([agent])), DashboardEvent(seq: 4, .reminders([]))] {
            let text = try line(event)
            #expect(text.contains(#""kind":"\#(event.change.kind)""#))
            #expect(try WireCoding.decoder().decode(DashboardEvent.self, from: Data(text.utf8)) == event)
        }
        #expect(try line(DashboardEvent(seq: 3, .agents([agent]))).contains(#""state":"rate_limited""#))
        #expect(try line(DashboardEvent(seq: 2, .messageState(Self.message))).contains(#""message":{"#))
    }

    @Test("a report of a state that is not the harness's is refused with the list of those that are")
    func harnessStates() throws {
        let table = AgentRequest.table
        #expect(throws: RequestError("report_state: unknown state 'destroyed' (one of backoff, claude_missing, compacting, disconnected, idle, needs_billing, needs_login, rate_limited, starting, thinking)")) {
            _ = try table.decode(Data(#"{"cmd":"report_state","state":"destroyed"}"#.utf8))
        }
        #expect(throws: RequestError.self) { _ = try table.decode(Data(#"{"cmd":"report_state","state":"x"}"#.utf8)) }
        guard case .reportState(let r) = try table.decode(Data(#"{"cmd":"report_state","state":"rate_limited","rate_limited_until":9}"#.utf8)) else {
            Issue.record("not a report"); return
        }
        #expect(r.state == .rateLimited && r.rateLimitedUntil == 9)
    }

    @Test("states print as the wire spells them")
    func spelling() {
        #expect("\(AgentState.overDiskQuota)" == "over_disk_quota")
        #expect("\(ApprovalKind.initConfig)" == "init_config")
        #expect(AgentState.allCases.allSatisfy { "\($0)" == $0.rawValue })
    }
}
