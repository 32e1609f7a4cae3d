import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A stand-in of the Anthropic Messages API on loopback, for the real Claude Code CLI to talk to
/// (`ANTHROPIC_BASE_URL=<baseURL>`). It answers `POST /v1/messages` with a stream of server-sent events
/// exactly as the API does (message_start, content blocks with their deltas, message_delta with the stop
/// reason and usage, message_stop), errors with the API's status codes, bodies and rate-limit headers,
/// and records every request. The answers come from a `ScriptedModel`.
///
/// Only the model is a stand-in: everything between the harness and this server is the real CLI.
public final class ModelStandIn: Sendable {
    public let model: ScriptedModel
    private let recorded = Mutex<[RecordedRequest]>([])
    /// What a subscriber's answers say of its windows (`anthropic-ratelimit-unified-<key>`): a test sets it.
    private let unified = Mutex<[String: String]>(["5h-utilization": "0.1"])

    /// The windows' state every subscriber answer reports from now on, e.g. `["5h-utilization": "0.7",
    /// "5h-reset": "1796220000"]`.
    public func setUnifiedHeaders(_ headers: [String: String]) { unified.withLock { $0 = headers } }
    private let task = Mutex<Task<Void, any Error>?>(nil)
    public let port: Int

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// The server's own log only for what is critical: a stopped stand-in cancelling its open streams is
    /// expected, not news.
    public static var quietLogger: Logger {
        var l = Logger(label: "model-stand-in")
        l.logLevel = .critical
        return l
    }

    /// One request the CLI made.
    public struct RecordedRequest: Sendable {
        public var method: String
        public var path: String
        public var headers: [String: String]
        /// The JSON body (nil for a body that is not JSON).
        public var body: Data
        public var status: Int

        public var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        /// Every user text of the conversation (what the model was shown), joined.
        public var userText: String {
            (json["messages"] as? [[String: Any]] ?? []).filter { $0["role"] as? String == "user" }
                .flatMap { ScriptedModel.texts(of: $0) }.joined(separator: "\n")
        }
        public var toolNames: [String] { (json["tools"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String } }
    }

    /// Starts on 127.0.0.1 (port 0: any free one) and returns once it listens.
    public init(model: ScriptedModel = ScriptedModel(), port: Int = 0, logger: Logger = ModelStandIn.quietLogger) async throws {
        self.model = model
        let router = Router()
        let box = RecorderBox()
        router.on("/**", method: .post) { request, _ in try await box.handle(request) }
        router.on("/**", method: .head) { _, _ in Response(status: .ok) }
        router.on("/**", method: .get) { _, _ in Response(status: .notFound) }
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "model-stand-in"),
                              onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0); continuation.finish() },
                              logger: logger)
        let running = Task { try await app.run() }
        var bound = 0
        for await p in stream { bound = p }
        guard bound > 0 else { running.cancel(); throw StandInError("the stand-in API could not listen") }
        self.port = bound
        task.withLock { $0 = running }
        box.owner.withLock { $0 = self }
    }

    /// Stops listening (open streams end).
    public func stop() async {
        let t = task.withLock { t -> Task<Void, any Error>? in defer { t = nil }; return t }
        t?.cancel()
        _ = await t?.result
    }

    public var requests: [RecordedRequest] { recorded.withLock { $0 } }

    /// The requests that asked the model for an answer (`/v1/messages`).
    public var messageRequests: [RecordedRequest] { requests.filter { $0.path.hasPrefix("/v1/messages") && !$0.path.contains("count_tokens") } }

    func record(_ r: RecordedRequest) { recorded.withLock { $0.append(r) } }

    fileprivate func respond(_ request: Request) async throws -> Response {
        let bodyBuffer = try await request.body.collect(upTo: 64 << 20)
        let body = Data(buffer: bodyBuffer)
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let path = request.uri.path
        guard path.hasPrefix("/v1/messages"), let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else {
            record(RecordedRequest(method: "POST", path: path, headers: headers, body: body, status: 404))
            return Response(status: .notFound)
        }
        if path.hasSuffix("/count_tokens") {
            record(RecordedRequest(method: "POST", path: path, headers: headers, body: body, status: 200))
            return Self.json(["input_tokens": body.count / 4], status: .ok)
        }
        let reply = model.reply(to: json, apiKey: headers["x-api-key"] != nil)
        switch reply {
        case .error(let status, let type, let message, let extra):
            record(RecordedRequest(method: "POST", path: path, headers: headers, body: body, status: status))
            var response = Self.json(["type": "error", "error": ["type": type, "message": message]],
                                     status: HTTPResponse.Status(code: status))
            for (k, v) in extra { if let name = HTTPFields.Element.Name(k) { response.headers[name] = v } }
            response.headers[HTTPFields.Element.Name("request-id")!] = "req_standin"
            return response
        case .message(let blocks, let stop, let usage, let delay):
            record(RecordedRequest(method: "POST", path: path, headers: headers, body: body, status: 200))
            if delay > 0 { try await Task.sleep(for: .seconds(delay)) }
            let events = MessagesSSE.events(model: json["model"] as? String ?? "claude-sonnet-4-5", blocks: blocks,
                                            stopReason: stop, usage: usage)
            var response = Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                                    body: ResponseBody { writer in
                                        for e in events { try await writer.write(ByteBuffer(string: e)) }
                                        try await writer.finish(nil)
                                    })
            response.headers[HTTPFields.Element.Name("request-id")!] = "req_standin"
            if headers["authorization"] != nil {
                // A subscriber's requests carry their windows' state, as the API's do.
                response.headers[HTTPFields.Element.Name("anthropic-ratelimit-unified-status")!] = "allowed"
                for (k, v) in unified.withLock({ $0 }) {
                    if let name = HTTPFields.Element.Name("anthropic-ratelimit-unified-\(k)") { response.headers[name] = v }
                }
            }
            return response
        }
    }

    static func json(_ object: [String: Any], status: HTTPResponse.Status) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Lets the router's closure reach the server once it exists.
private final class RecorderBox: Sendable {
    let owner = Mutex<ModelStandIn?>(nil)
    func handle(_ request: Request) async throws -> Response {
        guard let o = owner.withLock({ $0 }) else { return Response(status: .serviceUnavailable) }
        return try await o.respond(request)
    }
}

public struct StandInError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

/// The Messages API's streaming format.
enum MessagesSSE {
    static func events(model: String, blocks: [ScriptedModel.Block], stopReason: String, usage: ScriptedModel.TokenUsage) -> [String] {
        let id = "msg_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(24))"
        let cacheWrite = usage.cacheWriteShort + usage.cacheWriteLong
        let startUsage: [String: Any] = [
            "input_tokens": usage.input, "output_tokens": 1, "cache_read_input_tokens": usage.cacheRead,
            "cache_creation_input_tokens": cacheWrite,
            "cache_creation": ["ephemeral_5m_input_tokens": usage.cacheWriteShort, "ephemeral_1h_input_tokens": usage.cacheWriteLong],
            "service_tier": "standard",
        ]
        var out = [event("message_start", ["type": "message_start", "message": [
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": NSNull(), "stop_sequence": NSNull(), "usage": startUsage,
        ] as [String: Any]])]
        for (i, block) in blocks.enumerated() {
            switch block {
            case .text(let text):
                out.append(event("content_block_start", ["type": "content_block_start", "index": i, "content_block": ["type": "text", "text": ""]]))
                out.append(event("content_block_delta", ["type": "content_block_delta", "index": i, "delta": ["type": "text_delta", "text": text]]))
            case .toolUse(let tid, let name, let input):
                out.append(event("content_block_start", ["type": "content_block_start", "index": i,
                                                         "content_block": ["type": "tool_use", "id": tid, "name": name, "input": [String: Any]()] as [String: Any]]))
                out.append(event("content_block_delta", ["type": "content_block_delta", "index": i,
                                                         "delta": ["type": "input_json_delta", "partial_json": input]]))
            }
            out.append(event("content_block_stop", ["type": "content_block_stop", "index": i]))
        }
        out.append(event("message_delta", ["type": "message_delta",
                                           "delta": ["stop_reason": stopReason, "stop_sequence": NSNull()] as [String: Any],
                                           "usage": ["output_tokens": usage.output, "input_tokens": usage.input,
                                                     "cache_read_input_tokens": usage.cacheRead, "cache_creation_input_tokens": cacheWrite]]))
        out.append(event("message_stop", ["type": "message_stop"]))
        return out
    }

    static func event(_ name: String, _ data: [String: Any]) -> String {
        let json = (try? JSONSerialization.data(withJSONObject: data, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return "event: \(name)\ndata: \(json)\n\n"
    }
}
