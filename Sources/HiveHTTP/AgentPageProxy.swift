import Foundation
import Synchronization
import Hummingbird
import HiveHost
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
public enum AgentPageProxy {
    public static let headTimeout: Duration = .seconds(30)
    public static let idleTimeout: Duration = .seconds(120)
    public static let maxRequestBody = 64 * 1024
    /// Response headers an agent's page may set; anything else (Set-Cookie, Refresh, Clear-Site-Data,
    /// Location, CORS) is dropped.
    public static let passedHeaders: Set<String> = ["content-type", "cache-control", "etag", "last-modified", "x-accel-buffering"]

    public struct Refused: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// A connected socket to the agent's page server whose peer is the agent, or why not.
    static func connect(runDir: URL, agent: AgentName) throws(Refused) -> Int32 {
        let dir = HiveLayout(root: runDir, runDir: runDir).agentPageDir(agent)
        var dirStat = stat()
        guard lstat(dir.path, &dirStat) == 0, (dirStat.st_mode & S_IFMT) == S_IFDIR else { throw Refused(description: "that agent's page is not up") }
        // The socket file is the agent's to replace (with a link to anything): it is opened without following
        // links, must be a socket, and is connected to through that very descriptor (/proc/self/fd), so
        // whoever connects (root core, on a node endpoint) never reaches what a link points at.
        let pageFD = open(dir.path, oPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard pageFD >= 0 else { throw Refused(description: "that agent's page is not up") }
        defer { close(pageFD) }
        let socketFD = openat(pageFD, "web.sock", oPath | O_NOFOLLOW | O_CLOEXEC)
        guard socketFD >= 0 else { throw Refused(description: "that agent's page is not up") }
        defer { close(socketFD) }
        var socketStat = stat()
        guard fstat(socketFD, &socketStat) == 0, (socketStat.st_mode & S_IFMT) == S_IFSOCK else {
            throw Refused(description: "that agent's web.sock is not a socket: refused")
        }
        let path = "/proc/self/fd/\(socketFD)"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Refused(description: "no socket: \(String(cString: strerror(errno)))") }
        var ok = false
        defer { if !ok { close(fd) } }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        // Non-blocking: a server that listens and never accepts makes a blocking connect wait forever.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        guard UnixSocket.withAddress(path, { Glibc.connect(fd, $0, $1) }) == 0 else {
            throw Refused(description: errno == EAGAIN ? "that agent's page is not accepting connections" : "that agent's page is not up")
        }
        var cred = PeerCredentials()
        var len = socklen_t(MemoryLayout<PeerCredentials>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 else { throw Refused(description: "cannot tell who serves that page") }
        // The agent's page dir is owned by the agent's uid (core hands it over in a run dir that is root's,
        // so it cannot be swapped); its page server runs as that uid. Core (root) or another agent at the other end means the
        // socket was swapped. (Agents that run as root, unsandboxed, can do anything anyway.)
        guard cred.uid == dirStat.st_uid else {
            throw Refused(description: "that agent's page is served by uid \(cred.uid), not the agent's (\(dirStat.st_uid)): refused")
        }
        // Where core and agents share a uid (a hive run by an ordinary user), the uid cannot tell core's
        // socket from the agent's: core's process can.
        if let core = corePID(runDir: runDir), cred.pid == core {
            throw Refused(description: "that agent's page socket leads to core: refused")
        }
        ok = true
        return fd
    }

    /// The pid at the other end of core's `web.sock` (core), asked once.
    static func corePID(runDir: URL) -> pid_t? {
        CorePID.value.withLock { cached in
            if let cached { return cached }
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            guard UnixSocket.withAddress(HiveLayout.webSocket(in: runDir).path, { Glibc.connect(fd, $0, $1) }) == 0 else { return nil }
            var cred = PeerCredentials()
            var len = socklen_t(MemoryLayout<PeerCredentials>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 else { return nil }
            cached = cred.pid
            return cred.pid
        }
    }

    /// An HTTP client channel on a checked connection to the agent's page server (``connect(runDir:agent:)``).
    static func httpChannel(runDir: URL, agent: AgentName) async throws -> NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart> {
        let fd = try connect(runDir: runDir, agent: agent)
        // From here NIO owns the descriptor (it closes it, also when the bootstrap fails).
        return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .withConnectedSocket(fd) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
    }

    /// Sends `request` (as `path`, its body already read) to the agent's page and streams the response
    /// back, at the pace the browser takes it.
    public static func forward(_ request: Request, body: ByteBuffer, path: String, runDir: URL, agent: AgentName) async throws -> Response {
        let channel = try await httpChannel(runDir: runDir, agent: agent)
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
        // One buffer in flight at a time: the pump reads the next part only after the browser took the last
        // (a credit), so an agent's endless body costs hive web one buffer, not its memory.
        let (credits, creditsIn) = AsyncStream<Void>.makeStream()
        let headWait = AsyncThrowingStream<HTTPResponseHead, any Error>.makeStream()
        let pump = Task {
            do {
                try await channel.executeThenClose { inbound, outbound in
                    try await outbound.write(.head(head))
                    if body.readableBytes > 0 { try await outbound.write(.body(.byteBuffer(body))) }
                    try await outbound.write(.end(nil))
                    var sentHead = false
                    var credit = credits.makeAsyncIterator()
                    for try await part in inbound {
                        switch part {
                        case .head(let h):
                            // A 1xx is not an answer; only a final status is passed on.
                            guard h.status.code >= 200 else { continue }
                            if !sentHead { headWait.continuation.yield(h); headWait.continuation.finish(); sentHead = true }
                        case .body(let b):
                            partsIn.yield(b)
                            guard await credit.next() != nil else { return }
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
        partsIn.onTermination = { _ in pump.cancel(); creditsIn.finish() }
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
        return Response(status: HTTPResponse.Status(code: Int(responseHead.status.code)), headers: headers, body: ResponseBody { writer in
            // A page that sends nothing for `idleTimeout` is cut off (live streams ping every 15 s).
            let progress = Mutex(ContinuousClock.now)
            let watchdog = Task {
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(5))
                    if ContinuousClock.now - progress.withLock({ $0 }) > idleTimeout { pump.cancel(); return }
                }
            }
            defer { watchdog.cancel(); pump.cancel(); creditsIn.finish() }
            for try await buffer in parts {
                try await writer.write(buffer)
                progress.withLock { $0 = ContinuousClock.now }
                creditsIn.yield()
            }
            try await writer.finish(nil)
        })
    }
}

extension AgentPageProxy {
    /// GETs `path` from the agent's page server (connected and checked as ``connect(runDir:agent:)``) and
    /// returns its status and body: at most `maxBytes` (more is refused, not truncated) within `timeout`.
    public static func fetch(_ path: String, runDir: URL, agent: AgentName, maxBytes: Int, timeout: Duration) async throws -> (status: Int, body: Data) {
        let channel = try await httpChannel(runDir: runDir, agent: agent)
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
        head.headers.add(name: "Host", value: "agent")
        head.headers.add(name: "Connection", value: "close")
        let exchange = Task { () throws -> (Int, Data) in
            try await channel.executeThenClose { inbound, outbound in
                try await outbound.write(.head(head))
                try await outbound.write(.end(nil))
                var status = 0
                var body = Data()
                for try await part in inbound {
                    switch part {
                    case .head(let h): if h.status.code >= 200 { status = Int(h.status.code) }
                    case .body(let b):
                        guard body.count + b.readableBytes <= maxBytes else { throw Refused(description: "the agent's answer is over \(maxBytes) bytes") }
                        body.append(contentsOf: b.readableBytesView)
                    case .end: return (status, body)
                    }
                }
                throw Refused(description: "the agent's page closed without answering")
            }
        }
        let timer = Task {
            try await Task.sleep(for: timeout)
            exchange.cancel()
            try? await channel.channel.close()
        }
        defer { timer.cancel() }
        do { return try await exchange.value } catch {
            // The timer cancelled the exchange and closed its channel: whatever that threw, time ran out.
            if exchange.isCancelled { throw Refused(description: "the agent's page did not answer within \(timeout)") }
            throw error
        }
    }
}

/// Linux's O_PATH (a descriptor naming a file without opening it), which Swift's Glibc module does not
/// export without _GNU_SOURCE.
private let oPath: Int32 = 0o10000000

/// Core's pid, once known.
private enum CorePID {
    static let value = Mutex<pid_t?>(nil)
}

/// `struct ucred` of <sys/socket.h> (`SO_PEERCRED`), which Swift's Glibc module does not export without
/// _GNU_SOURCE: the peer's pid, uid and gid.
private struct PeerCredentials {
    var pid: pid_t = 0
    var uid: uid_t = 0
    var gid: gid_t = 0
}
