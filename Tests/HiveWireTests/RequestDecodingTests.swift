import Foundation
import HiveWire
import Testing

@Suite("Request lines")
struct RequestDecodingTests {
    func decode(_ line: String) throws(RequestError) -> AgentRequest {
        try AgentRequest.table.decode(Data(line.utf8))
    }

    func error(_ line: String) -> String {
        do { _ = try decode(line); return "" } catch { return error.message }
    }

    @Test("a send decodes with snake_case fields")
    func send() throws {
        guard case .send(let c) = try decode(#"{"cmd":"send","to":"iris","body":"hi","in_reply_to":7}"#) else {
            Issue.record("not a send"); return
        }
        #expect(c == SendCommand(to: "iris", body: "hi", inReplyTo: 7))
    }

    @Test("unknown fields are ignored, so no field can smuggle in a sender")
    func unknownFields() throws {
        guard case .send(let c) = try decode(#"{"cmd":"send","to":"iris","body":"hi","from":"operator","x":[1]}"#) else {
            Issue.record("not a send"); return
        }
        #expect(c.to == "iris")
    }

    @Test("malformed lines get a sentence, not a crash")
    func malformed() {
        #expect(error("not json") == "request is not a JSON object on one line")
        #expect(error("[1,2]") == "request is not a JSON object on one line")
        #expect(error("{}").hasPrefix("missing field 'cmd'; known commands: ack_turn"))
        #expect(error(#"{"cmd":5}"#).contains("'cmd'"))
        #expect(error(#"{"cmd":"fly"}"#).hasPrefix("unknown command 'fly'"))
    }

    @Test("wrong field types name the field and the type wanted")
    func wrongTypes() {
        #expect(error(#"{"cmd":"recv","max":"3"}"#) == "recv: field 'max' has the wrong type: expected an integer")
        #expect(error(#"{"cmd":"recv","wait_seconds":"soon"}"#) == "recv: field 'wait_seconds' has the wrong type: expected a number")
        #expect(error(#"{"cmd":"send","to":"iris"}"#) == "send: missing field 'body'")
        #expect(error(#"{"cmd":"ack_turn","ids":[1,"2"]}"#).hasPrefix("ack_turn: field 'ids[1]'"))
        #expect(error(#"{"cmd":"send","to":"iris","body":"x","in_reply_to":1.5}"#).contains("in_reply_to"))
    }

    @Test("a command round-trips through its envelope")
    func envelope() throws {
        let line = try Envelope(RecvCommand(waitSeconds: 2.5, max: 4)).line()
        #expect(line.last == 0x0A)
        guard case .recv(let c) = try AgentRequest.table.decode(line.dropLast()) else { Issue.record("not a recv"); return }
        #expect(c.waitSeconds == 2.5 && c.max == 4)
    }

    @Test("every response carries ok and the protocol version")
    func responses() throws {
        let ok = try JSONSerialization.jsonObject(with: ResponseLine.ok(StatusCommand.Reply(name: "iris", unread: 2, inflight: 1))) as! [String: Any]
        #expect(ok["ok"] as? Bool == true)
        #expect(ok["version"] as? Int == WireLimits.protocolVersion)
        #expect(ok["unread"] as? Int == 2)
        let bad = try JSONSerialization.jsonObject(with: ResponseLine.failure("nope")) as! [String: Any]
        #expect(bad["ok"] as? Bool == false)
        #expect(bad["error"] as? String == "nope")
        #expect(bad["version"] as? Int == WireLimits.protocolVersion)
    }

    @Test("the admin socket has its own command set")
    func admin() throws {
        guard case .destroy(let c) = try AdminRequest.table.decode(Data(#"{"cmd":"destroy","name":"iris","purge":true}"#.utf8)) else {
            Issue.record("not a destroy"); return
        }
        #expect(c.purge == true)
        #expect(throws: RequestError.self) { try AdminRequest.table.decode(Data(#"{"cmd":"recv"}"#.utf8)) }
    }
}
