import Foundation
import HiveWire
import HiveHost
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

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
    private let owner: (uid_t, gid_t)?
    private let gate: EgressGate
    private let budget: Mutex<EgressBudget>
    private let record: @Sendable (GatewayEntry) -> Void
    private let listener = Mutex<Listener?>(nil)

    /// Serves `path` (0660, owned by `owner` when given: the agent's cage connects, no one else).
    public init(path: String, owner: (uid_t, gid_t)? = nil, gate: EgressGate, budget: EgressBudget, record: @escaping @Sendable (GatewayEntry) -> Void) {
        self.path = path
        self.owner = owner
        self.gate = gate
        self.budget = Mutex(budget)
        self.record = record
    }

    /// Binds the socket and serves it on a thread until ``stop()``.
    public func start() throws {
        // A few more than the budget's connections, so the ones over it hear why (429).
        let l = try Listener(unixPath: path, mode: 0o660, owner: owner, cap: budget.withLock { $0.maxConnections } + 8)
        listener.withLock { $0 = l }
        l.start { [self] client in serve(client) }
    }

    /// Stops accepting; tunnels already open run to their end.
    public func stop() {
        listener.withLock { l in l?.stop(); l = nil }
    }

    // MARK: - One connection

    private func serve(_ connection: Int32) {
        defer { close(connection) }
        // Counted from the accept: connections that never finish their head hold a slot (and a thread)
        // too, so an agent cannot pile them up.
        if let busy = budget.withLock({ $0.connect() }) {
            Self.setTimeout(connection, 0.2)
            if let (client, _, owned) = HandOff.receive(connection) {
                Self.respond(client, 429, busy)
                Self.drain(client) // its head is unread: let the refusal arrive rather than a reset
                if owned { close(client) }
            }
            record(Self.entry("-", allowed: false, status: 429, busy))
            return
        }
        defer { budget.withLock { $0.disconnect() } }
        Self.setTimeout(connection, Self.handshakeTimeout)
        // The cage's forwarder hands its connection over (``HandOff``); a client on the socket itself is served as it is.
        guard let (client, early, owned) = HandOff.receive(connection) else { return }
        defer { if owned { close(client) } }
        Self.setTimeout(client, Self.handshakeTimeout)
        guard let head = Self.readHead(client, read: early, deadline: Date().addingTimeInterval(Self.handshakeTimeout)) else {
            Self.respond(client, 431, "the request head is larger than \(Self.maxHead) bytes or did not end within \(Int(Self.handshakeTimeout)) s")
            Self.drain(client) // so the refusal is read, not reset by the bytes still unread
            record(Self.entry("-", allowed: false, status: 431, "the request head was too large or too slow"))
            return
        }
        // A CONNECT tunnel, or one plain HTTP request (`GET http://host/path`) sent on as `GET /path`.
        let host: String, port: Int, forwarded: Data?
        if let (h, p) = Self.connectTarget(head) {
            (host, port, forwarded) = (h, p, nil)
        } else if let (h, p, rewritten) = Self.plainTarget(head) {
            (host, port, forwarded) = (h, p, rewritten)
        } else {
            Self.respond(client, 405, "only CONNECT host:port, or a plain request to http://host/…, is served here")
            record(Self.entry(String(head.prefix(while: { $0 != "\r" }).prefix(120)), allowed: false, status: 405, "neither CONNECT nor an http:// request"))
            return
        }
        let decision = gate.decide(host: host, port: port, plain: forwarded != nil)
        let addresses: [IPAddress]
        switch decision {
        case .refuse(let why):
            Self.respond(client, 403, why)
            record(Self.entry("\(host):\(port)", allowed: false, status: 403, why))
            return
        case .dial(let list, _):
            addresses = list
        }
        guard let upstream = Self.dial(addresses, port: port) else {
            let why = "\(host):\(port) did not answer"
            Self.respond(client, 502, why)
            record(Self.entry("\(host):\(port)", allowed: true, status: 502, why))
            return
        }
        defer { close(upstream) }
        if let forwarded {
            guard UnixSocket.writeAll(upstream, forwarded) else { return }
        } else {
            guard UnixSocket.writeAll(client, Data("HTTP/1.1 200 Connection Established\r\n\r\n".utf8)) else { return }
        }
        // From here a side that stops reading for a minute ends the tunnel instead of holding its thread.
        Self.setTimeout(client, 60)
        Self.setTimeout(upstream, 60)
        let (out, inn, how) = relay(client, upstream)
        record(Self.entry("\(host):\(port)", allowed: true, status: 200, how, out: out, in: inn))
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

    static func entry(_ destination: String, allowed: Bool, status: Int, _ note: String, out: Int = 0, in inn: Int = 0) -> GatewayEntry {
        GatewayEntry(at: Date().timeIntervalSince1970, kind: .connect, destination: destination, allowed: allowed, status: status,
                     note: note, bytesOut: out, bytesIn: inn)
    }

    // MARK: - Parsing and sockets

    /// The head up to its blank line, or nil when it is larger than ``maxHead``, the client stopped, or
    /// `deadline` passed (a byte every few seconds cannot hold the slot for hours).
    static func readHead(_ fd: Int32, read already: [UInt8] = [], deadline: Date) -> String? {
        // A byte at a time: nothing past the head is taken from the socket, so what the client sends
        // after it (its TLS hello, once it has the 200) stays for the tunnel. Heads are a few hundred bytes.
        var head = already
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

    /// `METHOD http://host[:port]/path HTTP/1.x` → host, port (80 by default) and the head to send the
    /// destination: the path alone on the request line, the proxy's own headers dropped, and
    /// `Connection: close` (one request per connection: a second one on it would reach this same host
    /// undecided, so none is kept alive). Nil for anything else.
    static func plainTarget(_ head: String) -> (String, Int, Data)? {
        var lines = head.components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ")
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1."), parts[0].allSatisfy({ $0.isASCII && $0.isUppercase }), parts[0] != "CONNECT",
              parts[1].lowercased().hasPrefix("http://") else { return nil }
        let rest = parts[1].dropFirst(7)
        let authority = rest.prefix(while: { $0 != "/" && $0 != "?" })
        var path = String(rest.dropFirst(authority.count))
        if path.isEmpty { path = "/" } else if path.hasPrefix("?") { path = "/" + path }
        guard !authority.contains("@"), !authority.isEmpty else { return nil }
        var host = String(authority), port = 80
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            guard let p = Int(authority[authority.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            port = p
            host = String(authority[..<colon])
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        // The destination is the URL's: the agent's Host header goes (it could name another site behind the
        // same address, a CDN's), and a head with a bare CR or LF is refused (servers split those differently).
        guard !lines.contains(where: { $0.contains("\r") || $0.contains("\n") }) else { return nil }
        let dropped: Set<String> = ["host", "connection", "proxy-connection", "proxy-authorization", "keep-alive"]
        lines = [lines[0]] + lines.dropFirst().filter { line in
            guard let colon = line.firstIndex(of: ":") else { return false }
            return !dropped.contains(line[..<colon].trimmingCharacters(in: .whitespaces).lowercased())
        }
        lines[0] = "\(parts[0]) \(path) \(parts[2])"
        lines.insert("Host: \(authority)", at: 1)
        lines.append("Connection: close")
        return (host, port, Data((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8))
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
