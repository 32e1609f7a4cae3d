import Foundation
import HiveClient
import HiveWire
import Testing

/// Messaging through a real `hive core` over its real sockets.
@Suite("Messaging end to end", .timeLimit(.minutes(2)))
struct MessagingTests {
    @Test("send, recv and ack over the sockets")
    func sendRecvAck() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        let sent = try await hive.admin().call(SendCommand(to: "iris", body: "hello iris"))
        let iris = try hive.agent("iris")
        let got = try await iris.call(RecvCommand(waitSeconds: 1, max: 4))
        #expect(got.messages.map(\.body) == ["hello iris"])
        #expect(got.messages.first?.from == "operator")
        #expect(got.messages.first?.id == sent.ids.first)
        #expect(try await iris.call(StatusCommand()) == .init(name: "iris", unread: 0, inflight: 1))
        let ack = try await iris.call(AckTurnCommand(ids: sent.ids))
        #expect(ack.acked == sent.ids)
        #expect(try await iris.call(StatusCommand()) == .init(name: "iris", unread: 0, inflight: 0))
        #expect(try await iris.call(RecentCommand(limit: 5)).messages.map(\.state) == [.acked])
    }

    @Test("a parked recv is woken by a send from another agent")
    func parkedRecv() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        let iris = try hive.agent("iris")
        let start = ContinuousClock.now
        async let parked = iris.call(RecvCommand(waitSeconds: 60))
        try await Task.sleep(for: .milliseconds(300))
        _ = try await hive.agent("manager").call(SendCommand(to: "iris", body: "wake up"))
        let got = try await parked
        #expect(got.messages.map(\.body) == ["wake up"])
        #expect(got.messages.first?.from == "manager")
        #expect(ContinuousClock.now - start < .seconds(30), "returned on the send, not on the 60 s timeout")
    }

    @Test("the socket is the identity: no request field can change the sender")
    func identity() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        let iris = try hive.agent("iris")
        let r = try await iris.raw(#"{"cmd":"send","to":"manager","body":"hi","from":"operator","sender":"operator"}"#)
        #expect(r["ok"] as? Bool == true)
        let got = try await hive.message(to: "manager", containing: "hi")
        #expect(got?.from == "iris")
        #expect(try await iris.call(WhoamiCommand()) == .init(name: "iris", role: .agent))
        #expect(try await hive.agent("manager").call(WhoamiCommand()) == .init(name: "manager", role: .manager))
        let toOperator = try await iris.call(SendCommand(to: "operator", body: "for you"))
        #expect(toOperator.recipients == ["operator"])
        #expect(try await hive.admin().call(InboxCommand()).messages.first?.from == "iris")
    }

    @Test("broadcast reaches every other agent once, flagged")
    func broadcast() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("ada")
        try await hive.spawn("bob")
        let fromOperator = try await hive.admin().call(SendCommand(to: "*", body: "all hands"))
        #expect(fromOperator.recipients == ["ada", "bob", "manager"])
        let fromAda = try await hive.agent("ada").call(SendCommand(to: "*", body: "from ada"))
        #expect(fromAda.recipients == ["bob", "manager"])
        let bob = try await hive.agent("bob").call(RecvCommand(max: 10)).messages
        #expect(bob.map(\.body) == ["all hands", "from ada"])
        #expect(bob.allSatisfy { $0.broadcast })
        let ada = try await hive.agent("ada").call(RecvCommand(max: 10)).messages
        #expect(ada.map(\.body) == ["all hands"])
    }

    @Test("in_reply_to is kept inside a conversation and dropped outside it")
    func inReplyTo() async throws {
        let hive = try LiveHive()
        try await hive.start()
        for n in ["ada", "bob", "eve"] { try await hive.spawn(n) }
        let q = try await hive.agent("ada").call(SendCommand(to: "bob", body: "question")).ids[0]
        let a = try await hive.agent("bob").call(SendCommand(to: "ada", body: "answer", inReplyTo: q))
        #expect(a.inReplyTo == q && a.inReplyToDropped == nil)
        let e = try await hive.agent("eve").call(SendCommand(to: "ada", body: "butting in", inReplyTo: q))
        #expect(e.inReplyTo == nil)
        #expect(e.inReplyToDropped != nil)
        let u = try await hive.agent("bob").call(SendCommand(to: "ada", body: "dangling", inReplyTo: 424242))
        #expect(u.inReplyToDropped?.contains("unknown") == true)
        let got = try await hive.agent("ada").call(RecvCommand(max: 10)).messages
        #expect(got.map(\.body) == ["answer", "butting in", "dangling"])
        #expect(got.map(\.inReplyTo) == [q, nil, nil])
    }

    @Test("requeue_inflight hands unacked messages out again, flagged redelivered")
    func requeue() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "one"))
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "two"))
        let first = try await hive.agent("iris").call(RecvCommand(max: 2)).messages
        #expect(first.allSatisfy { !$0.redelivered })
        // A new harness on a new connection recovers what the old one popped but never acked.
        let fresh = try hive.agent("iris")
        #expect(try await fresh.call(RequeueInflightCommand()).requeued == 2)
        let again = try await fresh.call(RecvCommand(max: 5)).messages
        #expect(again.map(\.body) == ["one", "two"])
        #expect(again.allSatisfy { $0.redelivered })
    }

    @Test("unknown recipients and bad bodies are refused with a reason")
    func refusals() async throws {
        let hive = try LiveHive()
        try await hive.start()
        let admin = try hive.admin()
        let unknown = try await admin.raw(#"{"cmd":"send","to":"ghost","body":"x"}"#)
        #expect(unknown["ok"] as? Bool == false)
        #expect((unknown["error"] as? String)?.contains("unknown recipient 'ghost'") == true)
        let traversal = try await admin.raw(#"{"cmd":"send","to":"../etc","body":"x"}"#)
        #expect((traversal["error"] as? String)?.contains("not a valid agent name") == true)
        let empty = try await admin.raw(#"{"cmd":"send","to":"manager","body":""}"#)
        #expect(empty["error"] as? String == "message body is empty")
        let big = try await admin.raw(#"{"cmd":"send","to":"manager","body":"\#(String(repeating: "x", count: 5000))"}"#)
        #expect((big["error"] as? String)?.contains("limit is \(WireLimits.maxBodyBytes) bytes") == true)
        #expect(try await hive.agent("manager").call(StatusCommand()).unread == 0, "nothing refused was stored")
    }

    @Test("malformed lines get an error and the connection stays usable")
    func malformed() async throws {
        let hive = try LiveHive()
        try await hive.start()
        let c = try hive.agent("manager")
        let lines = [
            "this is not json",
            "[1,2,3]",
            #"{"no_cmd":true}"#,
            #"{"cmd":"teleport"}"#,
            #"{"cmd":"recv","max":"lots"}"#,
            #"{"cmd":"recv","wait_seconds":-1}"#,
            #"{"cmd":"recv","max":0}"#,
            #"{"cmd":"ack_turn","ids":"all"}"#,
            #"{"cmd":"send","to":"manager","body":"x","in_reply_to":1.5}"#,
            "{\"cmd\":\"whoami\"",
            String(repeating: "y", count: WireLimits.maxLineBytes + 10),
        ]
        for line in lines {
            let r = try await c.raw(line)
            #expect(r["ok"] as? Bool == false, "\(line.prefix(40)) should be refused")
            #expect(r["version"] as? Int == WireLimits.protocolVersion)
            #expect((r["error"] as? String)?.isEmpty == false)
        }
        #expect(try await c.call(WhoamiCommand()).name == "manager", "the same connection still works")
        #expect(try await hive.admin().call(ListCommand()).agents.count == 1, "and so does the server")
    }

    @Test("harness requests: dead letters notify the manager; reported state shows in list; next turn; new session")
    func harnessRequests() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        let iris = try hive.agent("iris")
        let id = try await hive.admin().call(SendCommand(to: "iris", body: "do the impossible")).ids[0]
        _ = try await iris.call(RecvCommand())
        let dl = try await iris.call(DeadLetterCommand(ids: [id], reason: "5 failed turns: API Error 500"))
        #expect(dl.dead == [id])
        let notice = try await hive.message(to: "manager", containing: "dead-lettered")
        #expect(notice?.from == "system")
        #expect(notice?.body.contains("iris dead-lettered message \(id) from operator") == true)
        #expect(notice?.body.contains("API Error 500") == true)

        _ = try await iris.call(ReportStateCommand(state: .rateLimited, rateLimitedUntil: 1_900_000_000, detail: "five_hour limit"))
        var row = try await hive.admin().call(ListCommand()).agents.first { $0.name == "iris" }
        #expect(row?.state == .rateLimited)
        #expect(row?.rateLimitedUntil == 1_900_000_000)
        #expect(row?.deadLetters == 1)
        let ls = try hive.cli(["ls", "--json"])
        #expect(ls.out.contains("\"rate_limited_until\" : 1900000000"))

        _ = try await iris.call(ReportStateCommand(state: .idle))
        row = try await hive.admin().call(ListCommand()).agents.first { $0.name == "iris" }
        #expect(row?.state == .idle && row?.rateLimitedUntil == nil)

        let next = try await iris.call(RequestNextTurnCommand(reason: "continue the migration"))
        let wake = try await iris.call(RecvCommand()).messages.first
        #expect(wake?.id == next.id && wake?.from == "system")

        // A fresh session is handed to the harness with its next turn's settings, once; core writes no file.
        #expect(try await iris.call(TurnSettingsCommand()).freshSession == false)
        _ = try await iris.call(NewSessionCommand())
        #expect(try await iris.call(TurnSettingsCommand()).freshSession == true)
        #expect(try await iris.call(TurnSettingsCommand()).freshSession == false)
        #expect(!FileManager.default.fileExists(atPath: hive.root.appending(path: "agents/iris/harness/new-session-requested").path))
    }

    @Test("recv caps: max is clamped to 32")
    func recvCap() async throws {
        let hive = try LiveHive()
        try await hive.start()
        let admin = try hive.admin()
        for i in 0..<40 { _ = try await admin.call(SendCommand(to: "manager", body: "m\(i)")) }
        let got = try await hive.agent("manager").call(RecvCommand(max: 1000))
        #expect(got.messages.count == WireLimits.maxRecvBatch)
        #expect(got.unread == 40 - WireLimits.maxRecvBatch)
    }
}
