import AsyncHTTPClient
import Crypto
import Foundation
import HiveBroker
import HiveHost
import HiveHTTP
import HiveWire
import Hummingbird
import HummingbirdTLS
import HTTPTypes
import NIOHTTP1
import Logging
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Where the nodes of a hive on many hosts reach each other (`--node-listen`, HTTPS): `hive move` carries
/// an agent's directories here, and a move asked on another node is handed to the agent's node here.
///
/// Every request names its node (`X-Hive-Node`) and carries that node's token (`Authorization: Bearer`),
/// checked against the SHA-256 in the node's row; the caller pins this node's certificate from the same
/// row (``NodeIdentity``). Anything else gets a 401 and nothing is read.
enum NodeEndpoint {
    /// The most one move may carry (an agent's state is bounded by its disk quota long before this).
    static let maxArchive: Int64 = 256 << 30
    /// Free space an arrival leaves on the root's file system, besides the archive and its unpacked copy.
    static let reserve: Int64 = 1 << 30

    static func application(moves: AgentMoves, identity: NodeIdentity, host: String, port: Int, logger: Logger) throws -> some ApplicationProtocol {
        let router = Router()
        router.get("/node/v1/ping") { request, _ -> Response in
            await guarded(request, moves, logger) { caller in HiveHTTP.Reply.json(["node": moves.here, "caller": caller]) }
        }
        router.post("/node/v1/agents/:name/move") { request, context -> Response in
            await guarded(request, moves, logger) { _ in
                let name = try AgentName(context.parameters.get("name") ?? "")
                let asked = try await request.body.collect(upTo: 4096)
                guard let body = try? JSONDecoder().decode([String: String].self, from: Data(buffer: asked)), let to = body["node"] else {
                    return HiveHTTP.Reply.error("the body is {\"node\": NAME}", status: .badRequest)
                }
                let target = try AgentName(to).rawValue
                let reply = try await Self.onThread { try moves.move(name, to: target) }
                return HiveHTTP.Reply.json(reply)
            }
        }
        router.put("/node/v1/agents/:name/arrival") { request, context -> Response in
            await guarded(request, moves, logger) { caller in
                let name = try AgentName(context.parameters.get("name") ?? "")
                guard let sha = request.headers[NodeHTTP.sha256], sha.utf8.count == 64, sha.allSatisfy(\.isHexDigit) else {
                    return HiveHTTP.Reply.error("X-Hive-SHA256 (hex) is missing", status: .badRequest)
                }
                guard let length = request.headers[.contentLength].flatMap({ Int64($0) }), length > 0, length <= maxArchive else {
                    return HiveHTTP.Reply.error("an arrival has a Content-Length, up to \(maxArchive) bytes", status: .badRequest)
                }
                guard let free = freeBytes(moves.layout.root), free - 2 * length > reserve else {
                    return HiveHTTP.Reply.error("not enough free disk on node \(moves.here) for \(length) bytes (and their unpacked copy)", status: .init(code: 507, reasonPhrase: "Insufficient Storage"))
                }
                try await Self.onThread { try moves.checkArrival(name, from: caller) }
                let spool = try AgentArchive.created(moves.spool(name, "in"))
                defer { try? FileManager.default.removeItem(at: spool) }
                let out = try FileHandle(forWritingTo: spool)
                var hash = SHA256()
                var got: Int64 = 0
                do {
                    defer { try? out.close() }
                    for try await buffer in request.body {
                        got += Int64(buffer.readableBytes)
                        guard got <= length else { return HiveHTTP.Reply.error("more bytes than Content-Length", status: .badRequest) }
                        buffer.withUnsafeReadableBytes { hash.update(bufferPointer: $0) }
                        try out.write(contentsOf: Data(buffer: buffer))
                    }
                }
                let digest = NodeIdentity.hex(hash.finalize())
                guard got == length, digest == sha.lowercased() else {
                    return HiveHTTP.Reply.error("the archive arrived damaged (\(got) of \(length) bytes, SHA-256 \(digest)): nothing changed", status: .unprocessableContent)
                }
                try await Self.onThread { try moves.unpackArrival(name, from: caller, spool: spool) }
                return HiveHTTP.Reply.json(["node": moves.here])
            }
        }
        // An agent's config: pushed by the git node to the agent's node, fetched from it by a node an agent arrives on.
        router.put("/node/v1/agents/:name/config") { request, context -> Response in
            await guarded(request, moves, logger) { caller in
                let name = try AgentName(context.parameters.get("name") ?? "")
                guard try await Self.onThread({ try moves.configs.gitNode() }) == caller else {
                    throw NodeRefusal(message: "only the node holding the git side configures agents", status: .forbidden)
                }
                let body = try await request.body.collect(upTo: NodeConfigs.maxConfig + 4096)
                let deployed = try JSONDecoder().decode(NodeConfigs.Deployed.self, from: Data(buffer: body))
                try await Self.onThread {
                    guard try moves.store.placements()[name.rawValue]?.node == moves.here else { throw NodeRefusal(message: "\(name) does not run on node \(moves.here)") }
                    guard !moves.lifecycle.busy.contains(name) else { throw NamesInFlight.busy(name) } // (a rebuild says so too)
                    try moves.configs.apply(name, deployed, lifecycle: moves.lifecycle)
                }
                return HiveHTTP.Reply.json(["agent": name.rawValue, "sha": deployed.sha])
            }
        }
        router.get("/node/v1/agents/:name/config") { request, context -> Response in
            await guarded(request, moves, logger) { caller in
                let name = try AgentName(context.parameters.get("name") ?? "")
                let deployed = try await Self.onThread { () throws -> NodeConfigs.Deployed? in
                    // The agent's node, or the node it is being moved to.
                    let placed = try moves.store.placements()[name.rawValue]?.node
                    let arriving = try moves.store.moveUnderWay(name)?.to
                    guard placed == caller || arriving == caller else {
                        throw NodeRefusal(message: "\(name) is neither on node \(caller) nor on its way there", status: .forbidden)
                    }
                    return try moves.configs.deployed(name)
                }
                // Nothing deployed is an answer too (the defaults), never a 404 a missing route would also give.
                return HiveHTTP.Reply.json(NodeConfigs.Answer(deployed: deployed))
            }
        }
        // An agent's page, for another node's dashboard: opened by that node's ticket for this one agent.
        for method in [HTTPRequest.Method.get, .post] {
            router.on("/node/v1/agents/:name/page/**", method: method) { request, context -> Response in
                guard let node = request.headers[NodeHTTP.node], let ticket = request.headers[NodeHTTP.ticket],
                      let via = try? AgentName(node).rawValue, let name = try? AgentName(context.parameters.get("name") ?? "") else {
                    return HiveHTTP.Reply.error("a node's name and a page ticket are needed", status: .unauthorized)
                }
                guard via != moves.here, let peer = await moves.peers.peer(via),
                      NodeIdentity.checkTicket(ticket, via: via, target: moves.here, agent: name.rawValue, certificatePEM: peer.certificate,
                                               now: Date().timeIntervalSince1970) else {
                    moves.peers.refused("refused a page ticket naming node '\(via)' for \(name)")
                    return HiveHTTP.Reply.error("a node's name and a page ticket are needed", status: .unauthorized)
                }
                let prefix = "/node/v1/agents/\(name.rawValue)/page"
                let path = request.uri.path
                guard path.hasPrefix(prefix) else { return HiveHTTP.Reply.error("bad path", status: .badRequest) }
                let rest = (path.dropFirst(prefix.count).isEmpty ? "/" : String(path.dropFirst(prefix.count))) + (request.uri.query.map { "?\($0)" } ?? "")
                guard rest.utf8.count <= 2048, !rest.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 } == true }) else {
                    return HiveHTTP.Reply.error("bad path", status: .badRequest)
                }
                do {
                    let body = method == .post ? try await request.body.collect(upTo: AgentPageProxy.maxRequestBody) : ByteBuffer()
                    return try await AgentPageProxy.forward(request, body: body, path: rest, runDir: moves.layout.runDir, agent: name)
                } catch let refused as AgentPageProxy.Refused {
                    return HiveHTTP.Reply.error(refused.description, status: .badGateway)
                } catch {
                    return HiveHTTP.Reply.error("the agent's page is not answering", status: .badGateway)
                }
            }
        }
        return Application(router: router, server: try .tls(.http1(configuration: .init(idleTimeout: .seconds(60))), tlsConfiguration: identity.serverTLS()),
                           configuration: .init(address: .hostname(host, port: port), serverName: "hive-node"), logger: logger)
    }

    /// Runs `body` for an authenticated caller (its node's name); refusals as JSON with a reason.
    static func guarded(_ request: Request, _ moves: AgentMoves, _ logger: Logger, _ body: (String) async throws -> Response) async -> Response {
        guard let node = request.headers[NodeHTTP.node], let auth = request.headers[.authorization], auth.hasPrefix("Bearer "),
              auth.utf8.count <= 300, let name = try? AgentName(node).rawValue else {
            return HiveHTTP.Reply.error("a node's name and token are needed", status: .unauthorized)
        }
        let token = String(auth.dropFirst("Bearer ".count))
        guard name != moves.here, let peer = await moves.peers.peer(name), CoreMetrics.admits(NodeIdentity.sha256(token), token: peer.tokenSHA256) else {
            moves.peers.refused("refused a request naming node '\(name)' (\(request.method) \(request.uri.path))")
            return HiveHTTP.Reply.error("a node's name and token are needed", status: .unauthorized)
        }
        do {
            return try await body(name)
        } catch let e as NodeRefusal {
            return HiveHTTP.Reply.error(e.message, status: e.status)
        } catch let e as NameError {
            return HiveHTTP.Reply.error(e.description, status: .badRequest)
        } catch let e as BrokerError {
            if case .unknownAgent = e { return HiveHTTP.Reply.error(e.description, status: .notFound) }
            return HiveHTTP.Reply.error(e.description, status: .serviceUnavailable)
        } catch {
            logger.warning("node endpoint: \(request.method) \(request.uri.path) from \(name) failed: \(error)")
            return HiveHTTP.Reply.error("\(error)", status: .conflict)
        }
    }

    static func freeBytes(_ dir: URL) -> Int64? {
        var st = statvfs()
        guard statvfs(dir.path, &st) == 0 else { return nil }
        return Int64(st.f_bavail) * Int64(st.f_frsize)
    }

    static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await HiveCore.onThread { Result { try body() } }.get()
    }
}

/// A refusal with its HTTP status.
struct NodeRefusal: Error, CustomStringConvertible {
    var message: String
    var status: HTTPResponse.Status = .conflict
    var description: String { message }
}

/// Calls another node's endpoint, pinning the certificate its row names and sending this node's token.
struct NodeLink: Sendable {
    let here: String
    let identity: NodeIdentity

    struct Answer: Sendable {
        var status: Int
        var body: Data
        /// The reason a refusal gave.
        var message: String {
            (try? JSONDecoder().decode([String: String].self, from: body))?["error"] ?? String(decoding: body.prefix(500), as: UTF8.self)
        }
    }

    func call(_ peer: NodePeer, _ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: HTTPClientRequest.Body? = nil,
              timeout: Duration) async throws -> Answer {
        guard let base = URL(string: peer.endpoint), base.scheme == "https", base.host != nil else {
            throw CoreError("node \(peer.name) publishes no usable endpoint ('\(peer.endpoint)')")
        }
        var request = HTTPClientRequest(url: peer.endpoint + path)
        request.method = method
        request.tlsConfiguration = try NodeHTTP.clientTLS(pinning: peer.certificate)
        request.headers.add(name: NodeHTTP.node.rawName, value: here)
        request.headers.add(name: "Authorization", value: "Bearer \(identity.token)")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = body
        let response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(Int64(timeout.seconds * 1000)))
        let data = try await response.body.collect(upTo: 1 << 20)
        return Answer(status: Int(response.status.code), body: Data(buffer: data))
    }
}
