import AsyncHTTPClient
import Foundation
import HiveHTTP
import HiveWire
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import Synchronization

/// An agent's page when the agent runs on another node of a hive on many hosts: core names that node's
/// endpoint, the certificate to pin and a short-lived ticket for that one agent (``PageRouteCommand``),
/// and the request goes there over HTTPS; that node's core forwards it to the agent's page socket with the
/// same checks as ``AgentPageProxy`` here. The answer streams back with the same headers passed, and the
/// dashboard adds its own (sandbox, no cookies) as for any agent's page.
final class PageRoutes: Sendable {
    let core: CoreLink
    /// Routes asked within the last few seconds: a page's own requests come in bursts, and a move changes
    /// where an agent is within seconds.
    private let cache = Mutex<[String: (PageRouteCommand.Reply, ContinuousClock.Instant)]>([:])
    static let freshFor: Duration = .seconds(10)

    init(core: CoreLink) { self.core = core }

    func route(_ agent: AgentName) async throws -> PageRouteCommand.Reply {
        let now = ContinuousClock.now
        if let (route, at) = cache.withLock({ $0[agent.rawValue] }), now - at < Self.freshFor { return route }
        let route = try await core.call(PageRouteCommand(agent: agent.rawValue))
        cache.withLock { cache in
            cache = cache.filter { now - $0.value.1 < Self.freshFor } // bounded by the agents asked about lately
            cache[agent.rawValue] = (route, now)
        }
        return route
    }

    /// Sends `request` (as `path`, its body already read) to the agent's page on its node and streams back the answer.
    static func forward(_ request: Request, body: ByteBuffer, path: String, route: PageRouteCommand.Reply) async throws -> Response {
        guard let endpoint = route.endpoint, let certificate = route.certificate, let via = route.via, let ticket = route.ticket else {
            throw AgentPageProxy.Refused(description: "no route to that agent's node")
        }
        var out = HTTPClientRequest(url: endpoint + "/node/v1/agents/\(route.agent)/page" + path)
        out.method = HTTPMethod(rawValue: request.method.rawValue)
        out.tlsConfiguration = try NodeHTTP.clientTLS(pinning: certificate)
        out.headers.add(name: NodeHTTP.node.rawName, value: via)
        out.headers.add(name: NodeHTTP.ticket.rawName, value: ticket)
        for name in ["accept", "content-type", "last-event-id"] {
            if let v = request.headers[HTTPField.Name(name)!] { out.headers.add(name: name, value: v) }
        }
        if body.readableBytes > 0 { out.body = .bytes(body) }
        let sent = out
        // The head must come within the page proxy's time; a live stream may then run for an hour.
        let response = try await withThrowingTaskGroup(of: HTTPClientResponse?.self) { group in
            group.addTask { try await HTTPClient.shared.execute(sent, timeout: .hours(1)) }
            group.addTask { try await Task.sleep(for: AgentPageProxy.headTimeout); return nil }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let response = first else {
                throw AgentPageProxy.Refused(description: "the agent's node did not answer within \(AgentPageProxy.headTimeout)")
            }
            return response
        }
        guard (200...599).contains(Int(response.status.code)) else { throw AgentPageProxy.Refused(description: "the agent's node gave no usable answer") }
        var headers = HTTPFields()
        for header in response.headers where AgentPageProxy.passedHeaders.contains(header.name.lowercased()) {
            if let n = HTTPField.Name(header.name) { headers.append(HTTPField(name: n, value: header.value)) }
        }
        return Response(status: HTTPResponse.Status(code: Int(response.status.code)), headers: headers,
                        body: ResponseBody(asyncSequence: response.body))
    }
}
