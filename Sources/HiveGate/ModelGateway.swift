import AsyncHTTPClient
import Foundation
import HiveWire
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A gated agent's way to the model: a reverse proxy on a unix socket in its run dir (its cage reaches
/// it as `ANTHROPIC_BASE_URL`) to the real Messages API, or the hive's own `ANTHROPIC_BASE_URL`.
///
/// On the way out it lets through only the Messages API paths claude uses and only the models the
/// agent's approved config names, takes away whatever credential the agent sent (a placeholder) and
/// adds the hive's. On the way back it passes status, headers (the rate-limit ones included) and the
/// stream unchanged, reading the usage as it passes: the one spend record an agent cannot forge.
///
/// Hummingbird serves it and AsyncHTTPClient forwards (TLS to the real API, a pool of kept-alive
/// connections shared by every agent's gateway).
public final class ModelGateway: Sendable {
    /// What one agent's gateway needs to know.
    public struct Route: Sendable {
        public var agent: String
        /// The hive's credential for this agent; nil: none is stored, every request is refused (401).
        public var credential: StoredCredential?
        /// Whether the agent's approved config lets it ask this model.
        public var allowsModel: @Sendable (String) -> Bool
        /// The approved models, for the refusal's sentence (asked each time: the operator's `hive model` counts).
        public var approved: @Sendable () -> String
        /// What a subscription's answers say of its windows' use (`five_hour`, `seven_day`).
        public var windows: @Sendable ([String: WindowUse]) -> Void
        /// An answer's tokens as they become known: once when it starts (the prompt's tokens, most of
        /// the cost), again when it ends (`final`), under the same answer id. A core that dies mid-answer
        /// has recorded the first.
        public var metering: @Sendable (_ answer: String, _ model: String, _ usage: TokenCount, _ final: Bool) -> Void
        /// Why the agent may not call the model now (held over its budget with no turn running), and in
        /// how many seconds to try again; nil: it may.
        public var refusal: @Sendable () -> (why: String, retryAfter: Double)?
        public init(agent: String, credential: StoredCredential?, approved: @escaping @Sendable () -> String, allowsModel: @escaping @Sendable (String) -> Bool,
                    windows: @escaping @Sendable ([String: WindowUse]) -> Void = { _ in },
                    metering: @escaping @Sendable (String, String, TokenCount, Bool) -> Void = { _, _, _, _ in },
                    refusal: @escaping @Sendable () -> (why: String, retryAfter: Double)? = { nil }) {
            self.agent = agent; self.credential = credential; self.approved = approved; self.allowsModel = allowsModel; self.windows = windows
            self.metering = metering; self.refusal = refusal
        }
    }

    /// The API's own limit on a request body.
    public static let maxBody = 32 * 1024 * 1024
    /// Model requests of one agent in flight at once (claude makes one at a time, a few with subagents).
    public static let maxInFlight = 16
    /// The longest one answer may take, streamed.
    public static let answerDeadline = TimeAmount.minutes(60)
    /// What claude's Messages API traffic is: the answers, token counting, and its reachability probe.
    static func allowedPath(_ method: HTTPRequest.Method, _ path: String) -> Bool {
        switch (method, path) {
        case (.post, "/v1/messages"), (.post, "/v1/messages/count_tokens"), (.head, "/api/hello"), (.get, "/api/hello"): return true
        default: return false
        }
    }
    /// Request headers never passed on: hop-by-hop ones, the agent's credential (a placeholder), cookies,
    /// and the encodings (the meter reads the answer as it passes, so it comes uncompressed).
    static let droppedRequestHeaders: Set<String> = ["host", "connection", "keep-alive", "proxy-authorization", "proxy-connection", "te", "trailer",
                                                     "transfer-encoding", "upgrade", "content-length", "x-api-key", "authorization", "cookie", "accept-encoding",
                                                     "content-type", "content-encoding"]
    static let droppedResponseHeaders: Set<String> = ["connection", "keep-alive", "transfer-encoding", "content-length", "set-cookie", "upgrade", "proxy-authenticate"]

    public let path: String
    private let owner: (uid_t, gid_t)?
    let route: Route
    private let upstream: String
    private let client: HTTPClient
    fileprivate let record: @Sendable (GatewayEntry) -> Void
    private let logger: Logger
    fileprivate let inFlight = Atomic<Int>(0)
    private let running = Mutex<(group: ServiceGroup, task: Task<Void, Never>)?>(nil)

    /// `upstream` is the API's base URL (`https://api.anthropic.com`, or the hive's `ANTHROPIC_BASE_URL`).
    public init(path: String, owner: (uid_t, gid_t)?, route: Route, upstream: String, client: HTTPClient, logger: Logger,
                record: @escaping @Sendable (GatewayEntry) -> Void) {
        self.path = path
        self.owner = owner
        self.route = route
        self.upstream = upstream.hasSuffix("/") ? String(upstream.dropLast()) : upstream
        self.client = client
        self.logger = logger
        self.record = record
    }

    /// Binds the socket (0660, the agent's) and serves it until ``stop()``. Returns once it accepts.
    public func start() async throws {
        unlink(path)
        let (bound, boundIn) = AsyncStream<Bool>.makeStream()
        let owner = owner, path = path
        let app = Application(
            responder: CallbackResponder { [self] (request: Request, _: BasicRequestContext) in await respond(request) },
            // A connection with no request for half a minute is closed (claude opens one per request).
            server: .http1(configuration: .init(idleTimeout: .seconds(30))),
            configuration: .init(address: .unixDomainSocket(path: path), serverName: "hive-gateway"),
            onServerRunning: { _ in
                let ok = chmod(path, 0o660) == 0 && (owner.map { lchown(path, $0.0, $0.1) } ?? 0) == 0
                boundIn.yield(ok)
                boundIn.finish()
            },
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let task = Task { do { try await group.run() } catch { boundIn.finish() } }
        running.withLock { $0 = (group, task) }
        var it = bound.makeAsyncIterator()
        guard await it.next() == true else {
            await stop()
            throw GatewayError("cannot serve \(path)")
        }
    }

    /// Stops serving: answers in flight get `grace` to end, then are cut.
    public func stop(grace: Duration = .seconds(5)) async {
        guard let (group, task) = running.withLock({ r in defer { r = nil }; return r }) else { return }
        await group.triggerGracefulShutdown()
        let cut = Task { try await Task.sleep(for: grace); task.cancel() }
        await task.value
        cut.cancel()
        unlink(path)
    }

    // MARK: - One request

    private func respond(_ incoming: Request) async -> Response {
        var request = incoming
        let started = Date().timeIntervalSince1970
        let path = request.uri.path
        func refuse(_ status: Int, _ type: String, _ why: String, destination: String = path, bytesOut: Int = 0) -> Response {
            record(GatewayEntry(at: started, kind: .model, destination: destination, allowed: false, status: status, note: why, bytesOut: bytesOut))
            return Self.apiError(status, type, "hive gateway: \(why)")
        }
        guard Self.allowedPath(request.method, path) else {
            return refuse(404, "not_found_error", "\(request.method) \(path.prefix(200)) is not part of the Messages API the gateway passes on")
        }
        if path.hasPrefix("/v1/messages"), let held = route.refusal() {
            // Budgets are core's: an agent that calls its gateway itself, with no turn handed to it, is
            // refused as long as it is held (a turn already running is never stopped).
            var response = refuse(429, "rate_limit_error", "\(route.agent) is over its budget: \(held.why)")
            response.headers[HTTPFields.Element.Name("retry-after")!] = String(Int(max(1, held.retryAfter).rounded(.up)))
            return response
        }
        guard let credential = route.credential else {
            return refuse(401, "authentication_error", "no credential is stored for \(route.agent): the operator runs `hive login` (and `hive start \(route.agent)`)")
        }
        if let encoding = request.headers[.contentEncoding], encoding.lowercased() != "identity" {
            return refuse(415, "invalid_request_error", "a request body with content-encoding '\(encoding.prefix(40))' is not passed on (the gateway reads it)")
        }
        if let refused = Self.refusedBeta(request.headers[values: HTTPFields.Element.Name("anthropic-beta")!]) {
            return refuse(403, "permission_error", "the beta '\(refused.prefix(80))' would have the API reach out on the agent's behalf; the gateway does not pass it")
        }
        // The slot is taken before the body is read: what one agent holds in core is bounded by it.
        guard let exchange = Exchange(self, started: started) else {
            return refuse(429, "rate_limit_error", "\(Self.maxInFlight) model requests of \(route.agent) are in flight already")
        }
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: Self.maxBody) } catch {
            exchange.refused()
            return refuse(413, "request_too_large", "the request body is larger than \(Self.maxBody / 1024 / 1024) MiB, or it stopped")
        }
        exchange.bytesOut = body.readableBytes
        if path.hasPrefix("/v1/messages") {
            let asked: String
            do {
                guard let named = try ModelRequest.model(in: body.readableBytesView) else {
                    exchange.refused()
                    return refuse(400, "invalid_request_error", "the request names no model", bytesOut: body.readableBytes)
                }
                asked = named
            } catch {
                exchange.refused()
                return refuse(400, "invalid_request_error", "the request was refused: \(error)", bytesOut: body.readableBytes)
            }
            guard AgentConfig.isModelName(asked), route.allowsModel(asked) else {
                exchange.refused()
                let shown = AgentConfig.isModelName(asked) ? asked : "(not a model name)"
                return refuse(403, "permission_error", "the model '\(shown)' is not approved for \(route.agent) (its config allows \(route.approved()))",
                              destination: shown, bytesOut: body.readableBytes)
            }
            exchange.model = asked
        }
        var out = HTTPClientRequest(url: upstream + (request.uri.string.hasPrefix("/") ? request.uri.string : "/" + request.uri.string))
        out.method = NIOHTTP1.HTTPMethod(rawValue: request.method.rawValue)
        for field in request.headers where !Self.droppedRequestHeaders.contains(field.name.canonicalName) {
            out.headers.add(name: field.name.canonicalName, value: field.value)
        }
        out.headers.add(name: "accept-encoding", value: "identity")
        if request.method == .post { out.headers.add(name: "content-type", value: "application/json") }
        Self.authorize(&out.headers, with: credential)
        if request.method == .post { out.body = .bytes(body) }

        let response: HTTPClientResponse
        do {
            response = try await client.execute(out, deadline: .now() + Self.answerDeadline)
        } catch {
            logger.warning("\(route.agent): the model API did not answer: \(error)")
            exchange.finish(status: 502, note: "the model API did not answer (\(error))")
            return Self.apiError(502, "api_error", "hive gateway: the model API did not answer (\(error))")
        }
        let status = Int(response.status.code)
        exchange.status = status
        let windows = Self.windows(response.headers, now: started)
        if !windows.isEmpty { route.windows(windows) }
        if status == 401 {
            logger.warning("\(route.agent): the model API refused the hive's credential (401): it may have expired; `hive login`")
            exchange.note = "the model API refused the hive's credential for \(route.agent): hive login"
        }
        var headers = HTTPFields()
        for (name, value) in response.headers where !Self.droppedResponseHeaders.contains(name.lowercased()) {
            if let n = HTTPFields.Element.Name(name) { headers.append(HTTPFields.Element(name: n, value: value)) }
        }
        exchange.meter = ModelMeter(contentType: response.headers.first(name: "content-type"))
        return Response(status: HTTPResponse.Status(code: status), headers: headers, body: ResponseBody { writer in
            do {
                for try await chunk in response.body {
                    exchange.meter?.feed(chunk.readableBytesView)
                    exchange.meteredSoFar()
                    exchange.bytesIn += chunk.readableBytes
                    try await writer.write(chunk)
                }
                try await writer.finish(nil)
                exchange.finish(status: status, note: nil)
            } catch {
                exchange.finish(status: status, note: "cut off: \(error)")
                throw error
            }
        })
    }

    /// One model request from the moment it holds a slot: the slot is given back and the request logged
    /// exactly once, when it ends, is refused, or is dropped unanswered (the agent went away before the
    /// answer began: then `deinit` does it). The meter and the counts are touched by one task at a time.
    private final class Exchange: @unchecked Sendable {
        let gateway: ModelGateway
        let started: Double
        var model = "-"
        var status: Int?
        var note = "answered"
        var bytesOut = 0
        var bytesIn = 0
        var meter: ModelMeter?
        private var done = false
        /// This answer's id for the spend record, and whether its start was recorded.
        private let id = UUID().uuidString
        private var startRecorded = false

        init?(_ gateway: ModelGateway, started: Double) {
            guard gateway.inFlight.add(1, ordering: .relaxed).newValue <= ModelGateway.maxInFlight else {
                gateway.inFlight.subtract(1, ordering: .relaxed)
                return nil
            }
            self.gateway = gateway
            self.started = started
        }

        /// Refused before forwarding: the caller logs the refusal; only the slot goes back.
        func refused() {
            guard !done else { return }
            done = true
            gateway.inFlight.subtract(1, ordering: .relaxed)
        }

        /// Records the answer's start once its first usage is known.
        func meteredSoFar() {
            guard !startRecorded, let meter, meter.metered else { return }
            startRecorded = true
            gateway.route.metering(id, meter.model ?? model, meter.usage, false)
        }

        func finish(status: Int?, note: String?) {
            guard !done else { return }
            done = true
            gateway.inFlight.subtract(1, ordering: .relaxed)
            meter?.finish()
            let usage = meter.flatMap { $0.metered ? $0.usage : nil }
            if let usage { gateway.route.metering(id, meter?.model ?? model, usage, true) }
            gateway.record(GatewayEntry(at: started, kind: .model, destination: meter?.model ?? model, allowed: true, status: status ?? self.status,
                                        note: note ?? self.note, bytesOut: bytesOut, bytesIn: bytesIn, usage: usage))
        }

        deinit { finish(status: status, note: status == nil ? "the agent went away before the answer began" : "the agent went away mid-answer") }
    }

    /// A subscription's window use from an answer's `anthropic-ratelimit-unified-{5h,7d}-{utilization,reset}`.
    static func windows(_ headers: HTTPHeaders, now: Double) -> [String: WindowUse] {
        var out: [String: WindowUse] = [:]
        for (name, short) in [("five_hour", "5h"), ("seven_day", "7d")] {
            guard let used = headers.first(name: "anthropic-ratelimit-unified-\(short)-utilization").flatMap(Double.init), used.isFinite, used >= 0 else { continue }
            let reset = headers.first(name: "anthropic-ratelimit-unified-\(short)-reset").flatMap(Double.init).flatMap { $0.isFinite ? $0 : nil }
            out[name] = WindowUse(utilization: min(used, 10), resetsAt: reset, at: now)
        }
        return out
    }

    /// Puts the hive's credential where the API reads it: `x-api-key` for an API key; a bearer token and
    /// the OAuth beta for a subscription's token.
    static func authorize(_ headers: inout HTTPHeaders, with credential: StoredCredential) {
        switch credential.kind {
        case .apiKey:
            headers.replaceOrAdd(name: "x-api-key", value: credential.secret)
        case .oauthToken:
            headers.replaceOrAdd(name: "authorization", value: "Bearer \(credential.secret)")
            let betas = headers["anthropic-beta"].flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
            if !betas.contains(oauthBeta) {
                headers.remove(name: "anthropic-beta")
                headers.add(name: "anthropic-beta", value: (betas + [oauthBeta]).joined(separator: ","))
            }
        }
    }
    static let oauthBeta = "oauth-2025-04-20"

    /// API betas with which Anthropic's servers would connect elsewhere for the agent (remote MCP servers,
    /// fetching URLs, running code with network, files): a way around the allow-list. Others pass (claude
    /// adds new ones every few weeks).
    static let reachingOutBetas = ["mcp-client", "web-fetch", "code-execution", "files-api", "computer-use"]

    static func refusedBeta(_ values: [String]) -> String? {
        values.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            .first { beta in reachingOutBetas.contains { beta.hasPrefix($0) } }
    }

    /// An error as the API words them, so claude shows the sentence.
    static func apiError(_ status: Int, _ type: String, _ message: String) -> Response {
        let object: [String: Any] = ["type": "error", "error": ["type": type, "message": message]]
        let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
        return Response(status: HTTPResponse.Status(code: status), headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
