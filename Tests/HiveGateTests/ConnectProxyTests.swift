import Foundation
@testable import HiveGate
import HiveHost
import Synchronization
import HiveWire
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A TCP echo server on loopback for the tunnel's far end.
final class EchoServer: Sendable {
    private let listener: Listener
    var port: Int { listener.port }

    init() throws {
        listener = try Listener()
        listener.start { c in
            defer { close(c) }
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(c, &buffer, buffer.count)
                if n <= 0 { break }
                _ = write(c, buffer, n)
            }
        }
    }

    func stop() { listener.stop() }
}

/// The gateway's decision log, as the test reads it.
final class RecordLog: Sendable {
    let entries = Mutex<[GatewayEntry]>([])
    func append(_ r: GatewayEntry) { entries.withLock { $0.append(r) } }
    var all: [GatewayEntry] { entries.withLock { $0 } }
}

@Suite("the CONNECT gateway")
struct ConnectProxyTests {
    /// A client on the proxy's socket: sends each text, and collects what comes back after it (up to 3 s for the first bytes).
    static func exchange(_ path: String, _ texts: [String]) throws -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        guard UnixSocket.withAddress(path, { connect(fd, $0, $1) }) == 0 else { throw GatewayError("connect: \(String(cString: strerror(errno)))") }
        var tv = timeval(tv_sec: 3, tv_usec: 0) // a loaded CI machine is slow; replies come well before
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var got = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        for text in texts {
            _ = UnixSocket.writeAll(fd, Data(text.utf8))
            usleep(100_000)
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n <= 0 { break }
                got += buffer[0..<n]
                if n < buffer.count { break }
            }
        }
        return String(decoding: got, as: UTF8.self)
    }

    func proxy(_ echo: EchoServer, connections: Int = 4) throws -> (ConnectProxy, RecordLog, URL) {
        let dir = URL(filePath: NSTemporaryDirectory()).appending(path: "gw-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let gate = EgressGate(policy: try EgressPolicy(allow: ["echo.test:\(echo.port)", "loop.test:\(echo.port)", "http://plain.test:\(echo.port)"]),
                              resolver: StubResolver(table: ["echo.test": ["127.0.0.1"], "loop.test": ["127.0.0.1"], "plain.test": ["127.0.0.1"]]),
                              internalExceptions: ["127.0.0.1:\(echo.port)"])
        let records = RecordLog()
        let p = ConnectProxy(path: dir.appending(path: "egress.sock").path, gate: gate,
                             budget: EgressBudget(bytesPerMinute: 1_048_576, maxConnections: connections, now: Date().timeIntervalSince1970),
                             record: { r in records.append(r) })
        try p.start()
        return (p, records, dir)
    }

    @Test("an allowed name tunnels to its destination; the bytes are counted in the agent's log")
    func tunnel() throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let (p, records, dir) = try proxy(echo)
        defer { p.stop(); try? FileManager.default.removeItem(at: dir) }
        let reply = try Self.exchange(p.path, ["CONNECT echo.test:\(echo.port) HTTP/1.1\r\nHost: echo.test\r\n\r\n", "ping through the hive\n"])
        #expect(reply.hasPrefix("HTTP/1.1 200 Connection Established\r\n\r\n"))
        #expect(reply.hasSuffix("ping through the hive\n"), "\(reply)")
        usleep(200_000)
        let r = try #require(records.all.first)
        #expect(r.allowed && r.destination == "echo.test:\(echo.port)" && r.status == 200 && r.bytesOut == 22 && r.bytesIn == 22, "\(r)")
    }

    @Test("unlisted hosts, other ports, address literals and other methods are refused with a reason")
    func refusals() throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let (p, records, dir) = try proxy(echo)
        defer { p.stop(); try? FileManager.default.removeItem(at: dir) }
        let evil = try Self.exchange(p.path, ["CONNECT evil.test:443 HTTP/1.1\r\n\r\n"])
        #expect(evil.hasPrefix("HTTP/1.1 403 Forbidden") && evil.contains("evil.test is not on this agent's allow-list"))
        #expect(try Self.exchange(p.path, ["CONNECT echo.test:22 HTTP/1.1\r\n\r\n"]).hasPrefix("HTTP/1.1 403"))
        #expect(try Self.exchange(p.path, ["CONNECT 127.0.0.1:\(echo.port) HTTP/1.1\r\n\r\n"]).contains("is an address"))
        #expect(try Self.exchange(p.path, ["GET http://echo.test:\(echo.port)/ HTTP/1.1\r\n\r\n"]).contains("allowed over HTTPS only"), "plain HTTP only where listed")
        #expect(try Self.exchange(p.path, ["GET /relative HTTP/1.1\r\n\r\n"]).hasPrefix("HTTP/1.1 405"))
        let huge = try Self.exchange(p.path, [String(repeating: "X", count: 9000)])
        #expect(huge.hasPrefix("HTTP/1.1 431"), "\(huge.prefix(200))")
        usleep(100_000)
        #expect(records.all.filter { !$0.allowed }.compactMap(\.status).sorted() == [403, 403, 403, 403, 405, 431], "every refusal is logged with its status: \(records.all)")
        // A slowloris head holds its slot only until the handshake deadline.
        #expect(ConnectProxy.readHead(-1, deadline: .distantPast) == nil)
    }

    @Test("a plain HTTP request to a host listed as http:// goes on in origin form, one request, the proxy's headers dropped")
    func plainRequest() throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let (p, records, dir) = try proxy(echo)
        defer { p.stop(); try? FileManager.default.removeItem(at: dir) }
        let echoed = try Self.exchange(p.path, ["GET http://plain.test:\(echo.port)/simple/pkg?x=1 HTTP/1.1\r\nHost: other.site\r\nAccept: */*\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\n\r\n"])
        #expect(echoed == "GET /simple/pkg?x=1 HTTP/1.1\r\nHost: plain.test:\(echo.port)\r\nAccept: */*\r\nConnection: close\r\n\r\n", "the URL's host, not the agent's Host header: \(echoed)")
        usleep(200_000)
        #expect(records.all.first?.allowed == true && records.all.first?.destination == "plain.test:\(echo.port)")
        #expect(ConnectProxy.plainTarget("GET http://user@evil.test/ HTTP/1.1\r\n\r\n") == nil, "no user info")
        #expect(ConnectProxy.plainTarget("GET http://plain.test/ HTTP/1.1\r\nX: a\nHost: evil.test\r\n\r\n") == nil, "no bare line feeds")
    }

    @Test("connections past the agent's cap are refused until one closes, counted from the accept")
    func connectionCap() throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let (p, _, dir) = try proxy(echo, connections: 1)
        defer { p.stop(); try? FileManager.default.removeItem(at: dir) }
        let held = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #expect(UnixSocket.withAddress(p.path, { connect(held, $0, $1) }) == 0)
        usleep(200_000) // it sends nothing: an unfinished head holds the slot as much as a tunnel
        #expect(try Self.exchange(p.path, ["CONNECT loop.test:\(echo.port) HTTP/1.1\r\n\r\n"]).hasPrefix("HTTP/1.1 429"))
        close(held)
        usleep(300_000)
        #expect(try Self.exchange(p.path, ["CONNECT loop.test:\(echo.port) HTTP/1.1\r\n\r\n"]).hasPrefix("HTTP/1.1 200"))
    }

    @Test("from the cage's loopback: the forwarder carries the CLI's CONNECT to the gateway's socket and back, copied or handed over", arguments: [false, true])
    func throughTheForwarder(handOver: Bool) throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let (p, records, dir) = try proxy(echo)
        defer { p.stop(); try? FileManager.default.removeItem(at: dir) }
        let forwarder = try LoopbackForwarder(to: p.path, handOver: handOver)
        forwarder.start()
        defer { forwarder.stop() }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0) // closed below, to end the tunnel
        #expect(IPAddress("127.0.0.1")!.withSockaddr(port: forwarder.port, { connect(fd, $0, $1) }) == 0)
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        func roundTrip(_ text: String) -> String {
            _ = UnixSocket.writeAll(fd, Data(text.utf8))
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &buffer, buffer.count)
            return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
        }
        #expect(roundTrip("CONNECT echo.test:\(echo.port) HTTP/1.1\r\n\r\n") == "HTTP/1.1 200 Connection Established\r\n\r\n")
        #expect(roundTrip("hello from the cage") == "hello from the cage")
        #expect(roundTrip("CONNECT again") == "CONNECT again", "inside a tunnel the gateway no longer parses anything")
        close(fd)
        usleep(300_000)
        #expect(records.all.first?.bytesOut == 32)
    }

    @Test("a descriptor handed over that is not a stream socket (a file) is closed unused; nothing is served on it")
    func handedFile() throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let (p, records, dir) = try proxy(echo)
        defer { p.stop(); try? FileManager.default.removeItem(at: dir) }
        let file = dir.appending(path: "agent-file")
        try Data("mine\n".utf8).write(to: file)
        let fileFD = open(file.path, O_RDWR)
        defer { close(fileFD) }
        let conn = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(conn) }
        #expect(UnixSocket.withAddress(p.path, { connect(conn, $0, $1) }) == 0)
        #expect(HandOff.send(fileFD, over: conn))
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var byte: UInt8 = 0
        #expect(read(conn, &byte, 1) == 0, "closed without an answer")
        #expect(try String(contentsOf: file, encoding: .utf8) == "mine\n", "the file was not written")
        #expect(records.all.isEmpty)
    }
}
