import AsyncHTTPClient
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import HiveClient
import HiveHTTP
import HiveMetrics
import HiveWire
import Hummingbird
import Logging
import ServiceLifecycle
import NIOCore

/// `hive web`: the dashboard on one origin. `/` is the dashboard (live over server-sent events),
/// `/agent/<n>/…` each agent's own UI (proxied to its harness's `web.sock`, streaming), `/forge/…` the
/// forge. It reaches the hive only through ``CoreLink``; core checks every name and path itself.
public enum WebServer {
    /// Commands the dashboard may send as actions (core's web table is the final word).
    static let actions: Set<String> = ["send", "approve", "deny", "start", "stop", "restart", "revive", "destroy", "cancel_reminder", "logs", "answer", "set_model", "budget"]

    /// How logins are guarded: `throttle` (a password, which could be guessed; nil for the dashboard
    /// token), and whether a loopback peer's `X-Forwarded-For` names the client (only behind a proxy).
    public struct LoginPolicy: Sendable {
        var throttle: LoginThrottle?
        /// Behind a proxy: what it sends in ``ProxySecret/header``; only then are its forwarded headers believed.
        var proxySecret: String?
        public init(password: Bool, proxySecret: String?) {
            throttle = password ? LoginThrottle() : nil
            self.proxySecret = proxySecret
        }
    }

    public static func application(core: CoreLink, relay: FeedRelay, runDir: URL, host: String, port: Int, auth: WebAuth,
                                   logins: LoginPolicy, forge: String?, client: HTTPClient, logger: Logger) -> some ApplicationProtocol {
        let router = Router(context: WebContext.self)
        router.add(middleware: RequestMetrics())
        let routes = PageRoutes(core: core)

        /// Checks a login secret under the throttle: a session id, or the response refusing it.
        @Sendable func attempt(_ secret: String, _ request: Request, _ context: WebContext) -> Result<String, RefusedLogin> {
            let who = WebServer.client(request, context, proxySecret: logins.proxySecret)
            if let wait = logins.throttle?.admit(who) {
                return .failure(RefusedLogin(status: .tooManyRequests, text: "too many failed logins from \(who); try again in \(Int(wait.rounded(.up))) s"))
            }
            guard let id = auth.login(password: secret) else {
                return .failure(RefusedLogin(status: .unauthorized, text: "wrong password"))
            }
            logins.throttle?.succeeded(who)
            return .success(id)
        }

        router.get("/metrics") { request, _ in
            // For a scraper with the hive's metrics token (the agents' names and spend are not for every
            // user of the host); core checks it.
            let presented = request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
            guard let presented else {
                return Reply.error("a scrape needs Authorization: Bearer <the token in the hive root's metrics.token>", status: .unauthorized)
            }
            let coreText: String
            do { coreText = try await core.call(MetricsCommand(token: presented)).text } catch HiveClientError.refused(let why) {
                return Reply.error(why, status: .unauthorized)
            } catch {
                return Reply.error("core is not answering: \(error)", status: .serviceUnavailable)
            }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: coreText + HiveMetrics.text())))
        }

        router.get("/login") { request, context in
            // A login link (`hive up` prints one): the token in the query opens a session.
            guard let token = request.uri.queryParameters["token"].map(String.init) else { return html(DashboardPage.login(error: nil)) }
            switch attempt(token, request, context) {
            case .success(let id):
                // `next` may only name a page of this origin, relative (no scheme, no "//", no "..").
                let next = request.uri.queryParameters["next"].map(String.init) ?? ""
                let safe = next.range(of: #"^[a-z0-9][a-z0-9/_.-]*$"#, options: .regularExpression) != nil && !next.contains("..") && !next.contains("//")
                return loggedIn(id, next: safe ? next : "./", request, proxied: proxied(request, context, proxySecret: logins.proxySecret))
            case .failure(let refused):
                return html(DashboardPage.login(error: refused.status == .tooManyRequests ? refused.text : "that login link is not valid (any more)"), status: refused.status)
            }
        }
        router.post("/login") { request, context in
            let body = String(buffer: try await request.body.collect(upTo: 4096))
            switch attempt(form(body)["password"] ?? "", request, context) {
            case .success(let id): return loggedIn(id, request, proxied: proxied(request, context, proxySecret: logins.proxySecret))
            case .failure(let refused): return html(DashboardPage.login(error: refused.text), status: refused.status)
            }
        }
        // The dashboard itself: a person without a session goes to the login page.
        router.group().add(middleware: RequireSession(auth: auth, loginPage: "login")).get("/") { _, context in
            let snapshot = try await core.call(SnapshotCommand())
            return html(DashboardPage.dashboard(snapshot: snapshot, csrf: context.session?.csrf ?? ""))
        }
        // What the dashboard's script reads and does: a session, and its CSRF token on every POST.
        let operatorRoutes = router.group().add(middleware: RequireSession(auth: auth)).add(middleware: RequireCSRF())
        operatorRoutes.post("/logout") { _, context in
            guard let id = context.session?.id else { return unauthorized() }
            auth.logout(id)
            var r = Reply.json(["ok": "logged out"])
            r.headers[.setCookie] = "\(WebAuth.cookie)=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
            return r
        }
        operatorRoutes.get("/api/snapshot") { _, _ in
            Reply.json(try await core.call(SnapshotCommand()))
        }
        operatorRoutes.get("/api/file") { request, _ in
            let agent = request.uri.queryParameters["agent"].map(String.init)
            let path = request.uri.queryParameters["path"].map(String.init) ?? ""
            return try await passthrough(core, ReadFileCommand(agent: agent?.isEmpty == true ? nil : agent, relPath: path))
        }
        // Messages (core's index), or with `in=transcripts` every live agent's own transcript.
        operatorRoutes.get("/api/search") { request, _ in
            let q = request.uri.queryParameters["q"].map(String.init) ?? ""
            guard request.uri.queryParameters["in"] == "transcripts" else { return try await passthrough(core, SearchCommand(query: q, limit: 50)) }
            let agents = try await core.call(SnapshotCommand()).agents.filter { $0.state != .destroyed }.map(\.name)
            do {
                return Reply.json(try await TranscriptSearch.across(agents, query: q, limit: 50, runDir: runDir))
            } catch let e as RequestError {
                return Reply.error(e.description, status: .unprocessableContent)
            }
        }
        operatorRoutes.get("/api/forge") { _, _ in
            try await passthrough(core, ForgeReposCommand())
        }
        operatorRoutes.get("/api/config") { request, _ in
            try await passthrough(core, AgentConfigCommand(agent: request.uri.queryParameters["agent"].map(String.init) ?? ""))
        }
        operatorRoutes.post("/api/action") { request, _ in
            let body = try await request.body.collect(upTo: 16 * 1024)
            guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
                  let cmd = object["cmd"] as? String, actions.contains(cmd) else {
                return Reply.error("send a JSON object with cmd, one of: \(actions.sorted().joined(separator: ", "))", status: .badRequest)
            }
            // Re-encoded: one request, one line, whatever whitespace the body had.
            return answer(try await core.raw(try JSONSerialization.data(withJSONObject: object) + Data("\n".utf8)))
        }
        operatorRoutes.get("/events") { request, _ in
            let fromHeader = request.headers[.init("Last-Event-ID")!].flatMap { Int64($0) }
            let fromQuery = request.uri.queryParameters["after"].flatMap { Int64(String($0)) }
            return events(core, relay: relay, after: fromHeader ?? fromQuery ?? 0)
        }

        // Each agent's own UI, and the forge, on this origin.
        for method in [HTTPRequest.Method.get, .post, .head] {
            router.on("/agent/**", method: method) { request, _ in
                let parts = request.uri.path.split(separator: "/", omittingEmptySubsequences: false)
                guard parts.count >= 3, let name = try? AgentName(String(parts[2])) else { return Reply.error("no such agent", status: .notFound) }
                // Back to the site's root from here, relative: the site may sit under a base path.
                let root = String(repeating: "../", count: parts.count - 2)
                var restParts = parts.dropFirst(3)
                let viaCapability: Bool
                if let first = restParts.first, first.hasPrefix("~") {
                    // The agent's page loading its own data: the capability must be this agent's.
                    guard auth.agent(capability: String(first.dropFirst())) == name.rawValue else {
                        return navigation(request) ? Response(status: .seeOther, headers: [.location: root + "agent/\(name)/"]) : unauthorized()
                    }
                    restParts = restParts.dropFirst()
                    viaCapability = true
                } else {
                    // A sandboxed page (Origin "null") acts only through its own capability, never the cookie.
                    if request.headers[.origin] == "null" { return Reply.error("use the page's own path", status: .forbidden) }
                    guard let session = auth.session(cookieHeader: request.headers[.cookie]), let id = session.id else {
                        return navigation(request) ? Response(status: .seeOther, headers: [.location: root + "login"]) : unauthorized()
                    }
                    if navigation(request) {
                        // A person opening the page: on to its capability path, where the sandboxed page can load its data.
                        let cap = auth.agentCapability(session: id, agent: name.rawValue)
                        let target = root + "agent/\(name)/~\(cap)/" + restParts.joined(separator: "/") + (request.uri.query.map { "?\($0)" } ?? "")
                        return Response(status: .seeOther, headers: [.location: target, .cacheControl: "no-store"])
                    }
                    viaCapability = false
                }
                // Agent pages run sandboxed (an opaque origin), so their own buttons POST with Origin "null".
                if method == .post, !(sameOrigin(request) || (viaCapability && request.headers[.origin] == "null")) {
                    return Reply.error("cross-origin POST refused", status: .forbidden)
                }
                var response: Response
                if method == .post, restParts.elementsEqual(["model"]) {
                    // The model is the operator's to choose (it sets what the agent costs), on the dashboard.
                    // An agent's page is the agent's: whatever it posts comes from the agent, not the operator.
                    return Reply.error("an agent's page cannot set its model; set it on the dashboard", status: .forbidden)
                } else {
                    let rest = "/" + restParts.joined(separator: "/") + (request.uri.query.map { "?\($0)" } ?? "")
                    guard rest.utf8.count <= 2048, !rest.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 } == true }) else {
                        return Reply.error("bad path", status: .badRequest)
                    }
                    do {
                        let body = method == .post ? try await request.body.collect(upTo: AgentPageProxy.maxRequestBody) : ByteBuffer()
                        let route = try await routes.route(name)
                        response = route.endpoint == nil ? try await AgentPageProxy.forward(request, body: body, path: rest, runDir: runDir, agent: name)
                            : try await PageRoutes.forward(request, body: body, path: rest, route: route)
                    } catch let refused as AgentPageProxy.Refused {
                        logger.warning("agent page of \(name): \(refused)")
                        return Reply.error(refused.description, status: .badGateway)
                    } catch {
                        return Reply.error("the agent's page is not answering", status: .badGateway)
                    }
                }
                // What an agent serves must not act as this origin: a sandboxed, opaque origin cannot read the
                // dashboard or its CSRF token, and cannot set the session cookie.
                response.headers[.contentSecurityPolicy] = "sandbox allow-scripts allow-forms; frame-ancestors 'self'"
                response.headers[.setCookie] = nil
                response.headers[.init("Referrer-Policy")!] = "no-referrer" // the capability stays out of Referer
                if viaCapability { response.headers[.accessControlAllowOrigin] = "*" } // the sandboxed page reads its own data
                return response
            }
            if let forge {
                router.on("/forge/**", method: method) { request, _ in
                    let origin = forge.replacingOccurrences(of: "/forge", with: "")
                    return try await proxy(request, to: origin + request.uri.description, client: client, dropAuthorization: false, logger: logger)
                }
            }
        }
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "hive-web"), logger: logger)
    }

    struct RefusedLogin: Error {
        var status: HTTPResponse.Status
        var text: String
    }

    static func loggedIn(_ id: String, next: String = "./", _ request: Request, proxied: Bool) -> Response {
        var r = Response(status: .seeOther, headers: [.location: next])
        // Behind a TLS front (nginx from `hive nginx-config` says so), the cookie never travels in clear.
        let secure = proxied && request.headers[.init("X-Forwarded-Proto")!] == "https" ? "; Secure" : ""
        r.headers[.setCookie] = "\(WebAuth.cookie)=\(id); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(Int(WebAuth.lifetime))\(secure)"
        return r
    }

    /// Who is logging in: the peer's address, or, from our proxy, the address it forwarded (the last
    /// `X-Forwarded-For` entry: the one nginx appended).
    static func client(_ request: Request, _ context: WebContext, proxySecret: String?) -> String {
        let peer = context.remoteAddress?.ipAddress ?? "unknown"
        if proxied(request, context, proxySecret: proxySecret), let forwarded = request.headers[.init("X-Forwarded-For")!]?.split(separator: ",").last {
            return forwarded.trimmingCharacters(in: .whitespaces)
        }
        return peer
    }

    /// Whether the request came through our proxy: from loopback, carrying the proxy's secret.
    static func proxied(_ request: Request, _ context: WebContext, proxySecret: String?) -> Bool {
        guard let proxySecret, let sent = request.headers[.init(ProxySecret.header)!] else { return false }
        let peer = context.remoteAddress?.ipAddress ?? "unknown"
        let loopback = peer == "127.0.0.1" || peer == "::1" || peer.hasPrefix("::ffff:127.")
        return loopback && WebAuth.constantTimeEqual(sent, proxySecret)
    }

    /// A person opening a page of this site (not a script fetching data, not another site's link): only
    /// then does a capability for an agent's page get handed out. Browsers say so in Sec-Fetch-*; a client
    /// that sends none counts when it asks for HTML without an Origin.
    static func navigation(_ request: Request) -> Bool {
        guard request.method == .get else { return false }
        if let mode = request.headers[.init("Sec-Fetch-Mode")!] {
            let site = request.headers[.init("Sec-Fetch-Site")!] ?? "none"
            return mode == "navigate" && (site == "same-origin" || site == "none")
        }
        return request.headers[.origin] == nil && (request.headers[.accept]?.contains("text/html") ?? false)
    }

    /// The request came from a page of this origin (browsers send `Origin` on every POST).
    static func sameOrigin(_ request: Request) -> Bool {
        guard let origin = request.headers[.origin], let host = request.head.authority else { return false }
        return origin == "http://\(host)" || origin == "https://\(host)"
    }

    /// The dashboard's live feed as server-sent events, from `after` on: from the shared relay while it can
    /// answer, from core directly while it cannot (far behind, or ahead of the relay), `reset` when core
    /// says the client must start over. A ping every 15 s when nothing happens.
    static func events(_ core: CoreLink, relay: FeedRelay, after: Int64) -> Response {
        EventStream.response(retry: 2000) { sink in
            var last = after
            let (changes, wake) = relay.subscribe()
            defer { wake.finish() }
            var woken = changes.makeAsyncIterator()
            func send(_ frames: [FeedRelay.Frame]) async {
                guard let end = frames.last?.seq else { return }
                await sink.send(frames.map(\.text).joined()) // one write per batch
                last = end
            }
            feed: while !Task.isCancelled, !Task.isShuttingDownGracefully {
                switch relay.read(after: last) {
                case .events(let events):
                    await send(events)
                case .wait:
                    guard await woken.next() != nil else { break feed } // the relay stopped: the server is shutting down
                case .fromCore:
                    let reply: EventsCommand.Reply
                    do { reply = try await core.call(EventsCommand(after: last, waitSeconds: 5)) } catch { break feed }
                    if reply.reset {
                        await sink.send("event: reset\ndata: {}\n\n")
                        break feed
                    }
                    await send(reply.events.map(FeedRelay.Frame.init))
                }
            }
        }
    }

    static let hopByHop: Set<String> = ["connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
                                        "proxy-authorization", "proxy-authenticate", "host", "content-length"]

    /// Streams a request to `url` and its response back (server-sent events included, unbuffered).
    static func proxy(_ request: Request, to url: String, client: HTTPClient, dropAuthorization: Bool, logger: Logger) async throws -> Response {
        var out = HTTPClientRequest(url: url)
        out.method = .init(rawValue: request.method.rawValue)
        for field in request.headers {
            let name = field.name.canonicalName
            // The proxy's secret stays between nginx and this process.
            if hopByHop.contains(name) || name == "cookie" || name == ProxySecret.header.lowercased() || (dropAuthorization && name == "authorization") { continue }
            out.headers.add(name: field.name.rawName, value: field.value)
        }
        if request.method == .post {
            out.body = .stream(request.body, length: .unknown)
        }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(out, timeout: .hours(24), logger: logger)
        } catch {
            return Reply.error("the upstream is not answering (is it running?)", status: .badGateway)
        }
        var headers = HTTPFields()
        for (name, value) in response.headers where !hopByHop.contains(name.lowercased()) {
            if let n = HTTPFields.Element.Name(name) { headers.append(HTTPFields.Element(name: n, value: value)) }
        }
        return Response(status: HTTPResponse.Status(code: Int(response.status.code)), headers: headers,
                        body: ResponseBody(asyncSequence: response.body))
    }

    static func passthrough<C: HiveCommand>(_ core: CoreLink, _ command: C) async throws -> Response {
        answer(try await core.raw(try Envelope(command).line()))
    }

    /// Core's reply line as the HTTP answer: 200 when it says ok, 422 with its error when not.
    static func answer(_ reply: Data) -> Response {
        let ok = ((try? JSONSerialization.jsonObject(with: reply)) as? [String: Any])?["ok"] as? Bool == true
        return Reply.raw(reply, status: ok ? .ok : .unprocessableContent)
    }

    static func unauthorized() -> Response { Reply.error("log in first", status: .unauthorized) }

    static func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Reply.html(text, status: status, headers: [.contentSecurityPolicy: "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"])
    }

    static func form(_ body: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            if kv.count == 2 { out[kv[0]] = kv[1] }
        }
        return out
    }
}
