import Foundation
import HiveHTTP
import HiveMetrics
import Hummingbird
import HTTPTypes
import NIOCore

/// A request's context: the peer's address (for the login throttle) and, once ``RequireSession`` let
/// the request through, the operator's session.
public struct WebContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// The session the cookie names, with its CSRF token.
    public var session: (id: String?, csrf: String)?
    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// Lets a request through only with a live session, and puts the session in its context. Without one,
/// a person is sent to `loginPage`, a script (nil) gets 401.
struct RequireSession: RouterMiddleware {
    let auth: WebAuth
    var loginPage: String?

    func handle(_ request: Request, context: WebContext, next: (Request, WebContext) async throws -> Response) async throws -> Response {
        guard let session = auth.session(cookieHeader: request.headers[.cookie]) else {
            return loginPage.map { Response(status: .seeOther, headers: [.location: $0]) } ?? WebServer.unauthorized()
        }
        var context = context
        context.session = session
        return try await next(request, context)
    }
}

/// Every request that changes something (not GET or HEAD) must carry the session's CSRF token in
/// `X-Hive-CSRF`: another site can make a browser send the cookie, never read the token. Runs after
/// ``RequireSession``.
struct RequireCSRF: RouterMiddleware {
    static let header = HTTPField.Name("X-Hive-CSRF")!

    func handle(_ request: Request, context: WebContext, next: (Request, WebContext) async throws -> Response) async throws -> Response {
        if request.method != .get, request.method != .head {
            guard let csrf = context.session?.csrf, let sent = request.headers[Self.header], WebAuth.constantTimeEqual(sent, csrf) else {
                return Reply.error("missing or wrong CSRF token: reload the dashboard", status: .forbidden)
            }
        }
        return try await next(request, context)
    }
}

/// Counts every request by its status class and times it (`hive_web_requests_total{code}`,
/// `hive_web_request_duration_seconds`). A streamed response (SSE, an agent's page) is timed to its head.
struct RequestMetrics: RouterMiddleware {
    typealias Context = WebContext
    func handle(_ request: Request, context: WebContext, next: (Request, WebContext) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        func done(_ status: Int) {
            let d = ContinuousClock.now - start
            HiveMetrics.count(HiveMetrics.Name.webRequests, labels: [("code", "\(status / 100)xx")])
            HiveMetrics.record(HiveMetrics.Name.webRequestDuration, seconds: Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
        }
        do {
            let response = try await next(request, context)
            done(response.status.code)
            return response
        } catch let error as HTTPResponseError {
            done(error.status.code)
            throw error
        } catch {
            done(500)
            throw error
        }
    }
}
