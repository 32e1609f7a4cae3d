import Foundation
import Hummingbird
import HiveWire
import NIOCore
import NIOHTTP1
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// The proxy to an agent's own page server (`<run-dir>/agents/<n>/web.sock`), which the agent controls
/// entirely: the socket file (its run dir is its own, so it can swap the socket for a link to core's
/// `web.sock` or another agent's), and every byte the server sends.
///
/// So the connection is made here by hand and its peer checked with `SO_PEERCRED` before a byte is sent:
/// it must be the uid that owns the agent's run dir (the agent's, set by core), and never root. Then the
/// request goes over that very connection (SwiftNIO's HTTP codec on the connected socket; AsyncHTTPClient
/// connects by path itself and could not be told which connection to trust). One request per connection:
/// nothing is retried, so a one-shot POST body cannot be sent twice. The response status must be a final
/// one (200…599), its head must come within `headTimeout`, and only plain content headers pass to the
/// operator's browser.
enum AgentPageProxy {
    static let headTimeout: Duration = .seconds(30)
    static let maxRequestBody = 64 * 1024
    /// Response headers an agent's page may set; anything else (Set-Cookie, Refresh, Clear-Site-Data,
    /// Location, CORS) is dropped.
    static let passedHeaders: Set<String> = ["content-type", "cache-control", "etag", "last-modified", "x-accel-buffering"]

    struct Refused: Error, CustomStringConvertible {
        var description: String
    }

    /// A connected socket to the agent's page server whose peer is the agent, or why not.
    static func connect(runDir: URL, agent: AgentName) throws(Refused) -> Int32 {
        let dir = runDir.appending(path: "agents").appending(path: agent.rawValue)
        var dirStat = stat()
        guard lstat(dir.path, &dirStat) == 0, (dirStat.st_mode & S_IFMT) == S_IFDIR else { throw Refused(description: "that agent's page is not up") }
        let path = dir.appending(path: "web.sock").path
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Refused(description: "no socket: \(String(cString: strerror(errno)))") }
        var ok = false
        defer { if !ok { close(fd) } }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        guard UnixSocket.withAddress(path, { Glibc.connect(fd, $0, $1) }) == 0 else { throw Refused(description: "that agent's page is not up") }
        var cred = PeerCredentials()
        var len = socklen_t(MemoryLayout<PeerCredentials>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 else { throw Refused(description: "cannot tell who serves that page") }
        // The agent's run dir is owned by the agent's uid (core hands it over, and only root could give it
        // away); its page server runs as that uid. Core (root) or another agent at the other end means the
        // socket was swapped. (Agents that run as root, unsandboxed, can do anything anyway.)
        guard cred.uid == dirStat.st_uid else {
            throw Refused(description: "that agent's page is served by uid \(cred.uid), not the agent's (\(dirStat.st_uid)): refused")
        }
        ok = true
        return fd
    }

    /// Sends `request` (as `path`) over `fd` and streams the response back.
    static func forward(_ request: Request, path: String, fd: Int32) async throws -> Response {
        let body = request.method == .post ? try await request.body.collect(upTo: maxRequestBody) : ByteBuffer()
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .withConnectedSocket(fd) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            close(fd)
            throw error
        }
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: request.method.rawValue), uri: path)
        head.headers.add(name: "Host", value: "agent")
        head.headers.add(name: "Connection", value: "close")
        for name in ["accept", "content-type", "last-event-id"] {
            if let v = request.headers[HTTPFields.Element.Name(name)!] { head.headers.add(name: name, value: v) }
        }
        head.headers.add(name: "Content-Length", value: "\(body.readableBytes)")

        // The channel is driven by one task: it sends the request, hands back the response head, then
        // feeds the body to the response as it arrives. The operator's browser going away cancels it.
        let (parts, partsIn) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
        let headWait = AsyncThrowingStream<HTTPResponseHead, any Error>.makeStream()
        let pump = Task {
            do {
                try await channel.executeThenClose { inbound, outbound in
                    try await outbound.write(.head(head))
                    if body.readableBytes > 0 { try await outbound.write(.body(.byteBuffer(body))) }
                    try await outbound.write(.end(nil))
                    var sentHead = false
                    for try await part in inbound {
                        switch part {
                        case .head(let h):
                            // A 1xx is not an answer; only a final status is passed on.
                            guard h.status.code >= 200 else { continue }
                            if !sentHead { headWait.continuation.yield(h); headWait.continuation.finish(); sentHead = true }
                        case .body(let b):
                            partsIn.yield(b)
                        case .end:
                            partsIn.finish()
                            return
                        }
                    }
                    if !sentHead { headWait.continuation.finish(throwing: Refused(description: "the agent's page closed without answering")) }
                    partsIn.finish()
                }
            } catch {
                headWait.continuation.finish(throwing: error)
                partsIn.finish(throwing: error)
            }
        }
        partsIn.onTermination = { _ in pump.cancel() }
        let timeout = Task {
            try await Task.sleep(for: headTimeout)
            headWait.continuation.finish(throwing: Refused(description: "the agent's page did not answer within \(headTimeout)"))
            pump.cancel()
        }
        defer { timeout.cancel() }
        var heads = headWait.stream.makeAsyncIterator()
        guard let responseHead = try await heads.next(), (200...599).contains(Int(responseHead.status.code)) else {
            pump.cancel()
            throw Refused(description: "the agent's page gave no usable answer")
        }
        var headers = HTTPFields()
        for (name, value) in responseHead.headers where passedHeaders.contains(name.lowercased()) {
            if let n = HTTPFields.Element.Name(name) { headers.append(HTTPFields.Element(name: n, value: value)) }
        }
        return Response(status: HTTPResponse.Status(code: Int(responseHead.status.code)), headers: headers,
                        body: ResponseBody(asyncSequence: parts))
    }
}

/// `struct ucred` of <sys/socket.h> (`SO_PEERCRED`), which Swift's Glibc module does not export without
/// _GNU_SOURCE: the peer's pid, uid and gid.
private struct PeerCredentials {
    var pid: pid_t = 0
    var uid: uid_t = 0
    var gid: gid_t = 0
}
