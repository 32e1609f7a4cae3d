import Foundation
import HiveHost
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What the gateway did with one request of one agent: the per-agent decision log (the agent's page
/// shows it; metrics count it).
public struct EgressRecord: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var allowed: Bool
    /// Why it was refused, or how the tunnel ended.
    public var note: String
    public var bytesOut: Int
    public var bytesIn: Int
}

/// The host end of one agent's gated network for destinations other than the model and the forge: an
/// HTTP `CONNECT` proxy on a unix socket (bound into the agent's cage), one thread per connection like
/// core's line servers. Each request is decided by ``EgressGate`` (names resolved here, never by the
/// agent), bounded by the agent's ``EgressBudget``, and logged.
///
/// Hand-written on plain sockets rather than SwiftNIO: a tunnel is two file descriptors copied both
/// ways after one parsed line, and the rest of the gateway's bounds (head size, deadlines, the budget's
/// pauses) are simplest as blocking calls with timeouts on a thread of its own.
public final class ConnectProxy: Sendable {
    /// The longest request head taken (the request line and headers of a `CONNECT`).
    public static let maxHead = 8192
    /// How long a client has to send its head, and a dial to connect.
    public static let handshakeTimeout: Double = 10
    /// A tunnel with no byte either way for this long is closed.
    public static let idleTimeout: Double = 600

    public let path: String
    private let gate: EgressGate
    private let budget: Mutex<EgressBudget>
    private let record: @Sendable (EgressRecord) -> Void
    private let listener = Atomic<Int32>(-1)

    public init(path: String, gate: EgressGate, budget: EgressBudget, record: @escaping @Sendable (EgressRecord) -> Void) {
        self.path = path
        self.gate = gate
        self.budget = Mutex(budget)
        self.record = record
    }

    /// Binds the socket (0660) and serves it on a thread until ``stop()``.
    public func start() throws {
        signal(SIGPIPE, SIG_IGN) // splice(2) has no MSG_NOSIGNAL: a peer gone mid-tunnel is an error, not a signal
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw GatewayError("socket: \(String(cString: strerror(errno)))") }
        let bound = UnixSocket.withAddress(path) { Glibc.bind(fd, $0, $1) } ?? -1
        guard bound == 0, chmod(path, 0o660) == 0, Glibc.listen(fd, 64) == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw GatewayError("cannot serve \(path): \(why)")
        }
        listener.store(fd, ordering: .sequentiallyConsistent)
        Thread.detachNewThread { [self] in
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR { continue }
                    return // shut down
                }
                Thread.detachNewThread { [self] in serve(client) }
            }
        }
    }

    /// Stops accepting; tunnels already open run to their end.
    public func stop() {
        let fd = listener.exchange(-1, ordering: .sequentiallyConsistent)
        guard fd >= 0 else { return }
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        unlink(path)
    }

    // MARK: - One connection

    private func serve(_ client: Int32) {
        defer { close(client) }
        // Counted from the accept: connections that never finish their head hold a slot (and a thread)
        // too, so an agent cannot pile them up.
        if let busy = budget.withLock({ $0.connect() }) {
            Self.respond(client, 429, busy)
            Self.drain(client) // its head is unread: let the refusal arrive rather than a reset
            record(EgressRecord(host: "-", port: 0, allowed: false, note: busy, bytesOut: 0, bytesIn: 0))
            return
        }
        defer { budget.withLock { $0.disconnect() } }
        Self.setTimeout(client, Self.handshakeTimeout)
        guard let head = Self.readHead(client, deadline: Date().addingTimeInterval(Self.handshakeTimeout)) else {
            Self.respond(client, 431, "the request head is larger than \(Self.maxHead) bytes or did not end within \(Int(Self.handshakeTimeout)) s")
            Self.drain(client) // so the refusal is read, not reset by the bytes still unread
            return
        }
        guard let (host, port) = Self.connectTarget(head) else {
            Self.respond(client, 405, "only CONNECT host:port is served here (HTTPS through the hive's gateway)")
            return
        }
        let decision = gate.decide(host: host, port: port, plain: false)
        let addresses: [IPAddress]
        switch decision {
        case .refuse(let why):
            Self.respond(client, 403, why)
            record(EgressRecord(host: host, port: port, allowed: false, note: why, bytesOut: 0, bytesIn: 0))
            return
        case .dial(let list, _):
            addresses = list
        }
        guard let upstream = Self.dial(addresses, port: port) else {
            let why = "\(host):\(port) did not answer"
            Self.respond(client, 502, why)
            record(EgressRecord(host: host, port: port, allowed: true, note: why, bytesOut: 0, bytesIn: 0))
            return
        }
        defer { close(upstream) }
        guard UnixSocket.writeAll(client, Data("HTTP/1.1 200 Connection Established\r\n\r\n".utf8)) else { return }
        // From here a side that stops reading for a minute ends the tunnel instead of holding its thread.
        Self.setTimeout(client, 60)
        Self.setTimeout(upstream, 60)
        let (out, inn, how) = relay(client, upstream)
        record(EgressRecord(host: host, port: port, allowed: true, note: how, bytesOut: out, bytesIn: inn))
    }

    /// Copies both ways (see ``Tunnel``); every chunk is paid for from the agent's budget first (a
    /// pause, never a drop).
    private func relay(_ agent: Int32, _ destination: Int32) -> (out: Int, in: Int, how: String) {
        let (moved, end) = Tunnel.relay(agent, destination, idle: Self.idleTimeout) { n in
            let wait = budget.withLock { $0.take(n, now: Date().timeIntervalSince1970) }
            if wait > 0 { Thread.sleep(forTimeInterval: min(wait, 60)) }
        }
        let how: String
        switch end {
        case .closedBy(0): how = "closed by the agent"
        case .closedBy: how = "closed by the destination"
        case .idle: how = "closed after \(Int(Self.idleTimeout)) s idle"
        case .failed(let why): how = why
        }
        return (moved.0, moved.1, how)
    }

    // MARK: - Parsing and sockets

    /// The head up to its blank line, or nil when it is larger than ``maxHead``, the client stopped, or
    /// `deadline` passed (a byte every few seconds cannot hold the slot for hours).
    static func readHead(_ fd: Int32, deadline: Date) -> String? {
        // A byte at a time: nothing past the head is taken from the socket, so what the client sends
        // after it (its TLS hello, once it has the 200) stays for the tunnel. Heads are a few hundred bytes.
        var head = [UInt8]()
        head.reserveCapacity(512)
        var byte: UInt8 = 0
        while head.count < maxHead, Date() < deadline {
            guard read(fd, &byte, 1) == 1 else { return nil }
            head.append(byte)
            let c = head.count
            if c >= 4, head[c - 4] == 13, head[c - 3] == 10, head[c - 2] == 13, byte == 10 { return String(decoding: head, as: UTF8.self) }
        }
        return nil
    }

    /// `CONNECT host:port HTTP/1.x` → host and port (IPv6 in brackets), or nil for anything else.
    static func connectTarget(_ head: String) -> (String, Int)? {
        guard let line = head.split(separator: "\r\n", maxSplits: 1).first else { return nil }
        let parts = line.split(separator: " ")
        guard parts.count == 3, parts[0] == "CONNECT", parts[2].hasPrefix("HTTP/1.") else { return nil }
        let target = parts[1]
        guard let colon = target.lastIndex(of: ":"), let port = Int(target[target.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        var host = String(target[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, host.utf8.count <= 253 else { return nil }
        return (host, port)
    }

    /// Half-closes and reads what the client still sends, for half a second at most in all (a refused
    /// connection must not hold its thread longer than that).
    static func drain(_ fd: Int32) {
        shutdown(fd, Int32(SHUT_WR))
        setTimeout(fd, 0.1)
        let deadline = Date().addingTimeInterval(0.5)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline, read(fd, &buffer, buffer.count) > 0 {}
    }

    static func respond(_ fd: Int32, _ status: Int, _ text: String) {
        let reason = [403: "Forbidden", 405: "Method Not Allowed", 429: "Too Many Requests", 431: "Request Header Fields Too Large", 502: "Bad Gateway"][status] ?? "Error"
        let body = "hive gateway: \(text)\n"
        let response = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        _ = UnixSocket.writeAll(fd, Data(response.utf8))
    }

    /// A TCP connection to the first of `addresses` that answers within the handshake timeout.
    static func dial(_ addresses: [IPAddress], port: Int) -> Int32? {
        for address in addresses {
            let fd = socket(address.isV4 ? AF_INET : AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { continue }
            setTimeout(fd, handshakeTimeout) // bounds a blocking connect() on Linux too (SO_SNDTIMEO)
            if address.withSockaddr(port: port, { connect(fd, $0, $1) }) == 0 { return fd }
            close(fd)
        }
        return nil
    }

    /// Receive and send timeouts in seconds (0: none).
    static func setTimeout(_ fd: Int32, _ seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
}

public struct GatewayError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
