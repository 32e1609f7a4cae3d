import Foundation
import HiveGate
import HiveWire
import HiveHost
#if canImport(Glibc)
import Glibc
#endif

/// The gated network's tunnel against direct loopback: a download of `gatewayMB` through the cage's
/// forwarder, the gateway's unix socket and its CONNECT relay (policy, budget and log included), beside
/// the same download straight from the server. Everything runs in this process, so CPU is measured as
/// this process's user+system time over each download.
extension Bench {
    /// Answers every name with 127.0.0.1 (the server below), like the tests' stub.
    struct LoopbackResolver: NameResolver {
        func resolve(_ host: String) throws -> [IPAddress] { [IPAddress("127.0.0.1")!] }
    }

    func gatewayThroughput() throws -> String {
        let bytes = gatewayMB * 1_000_000
        let server = try DownloadServer(bytes: bytes)
        defer { server.stop() }
        let dir = URL(filePath: String(cString: mkdtemp(strdup("/tmp/hg-XXXXXX"))!))
        defer { try? FileManager.default.removeItem(at: dir) }
        let gate = EgressGate(policy: try EgressPolicy(allow: ["files.bench.test:\(server.port)"]), resolver: LoopbackResolver(),
                              internalExceptions: ["127.0.0.1:\(server.port)"])
        let proxy = ConnectProxy(path: dir.appending(path: "egress.sock").path, gate: gate,
                                 budget: EgressBudget(bytesPerMinute: 1e15, maxConnections: 8, now: Date().timeIntervalSince1970), record: { _ in })
        try proxy.start()
        defer { proxy.stop() }
        let forwarder = try LoopbackForwarder(to: proxy.path, handOver: true)
        forwarder.start()
        defer { forwarder.stop() }

        func download(port: Int, connect: Bool) throws -> (seconds: Double, cpu: Double) {
            let cpu0 = Self.cpuSeconds(), start = ContinuousClock.now
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            guard IPAddress("127.0.0.1")!.withSockaddr(port: port, { Glibc.connect(fd, $0, $1) }) == 0 else { throw GatewayError("connect failed") }
            var buffer = [UInt8](repeating: 0, count: 256 * 1024)
            var got = 0
            if connect {
                _ = UnixSocket.writeAll(fd, Data("CONNECT files.bench.test:\(server.port) HTTP/1.1\r\n\r\n".utf8))
                let reply = "HTTP/1.1 200 Connection Established\r\n\r\n".utf8.count
                var head = 0
                while head < reply { let n = read(fd, &buffer, reply - head); guard n > 0 else { throw GatewayError("no 200") }; head += n }
            }
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n <= 0 { break }
                got += n
            }
            guard got == bytes else { throw GatewayError("read \(got) of \(bytes) bytes") }
            return ((ContinuousClock.now - start).seconds, Self.cpuSeconds() - cpu0)
        }
        var direct: [(seconds: Double, cpu: Double)] = [], through: [(seconds: Double, cpu: Double)] = []
        for _ in 0..<5 {
            direct.append(try download(port: server.port, connect: false))
            through.append(try download(port: forwarder.port, connect: true))
        }
        func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
        let gb = Double(bytes) / 1e9
        let d = median(direct.map(\.seconds)), t = median(through.map(\.seconds))
        let dc = median(direct.map(\.cpu)) / gb, tc = median(through.map(\.cpu)) / gb
        return """

            ## Gateway tunnel run of \(ISO8601DateFormatter().string(from: Date()))

            Machine: 2 cores; \(Self.buildKind) build. A download of \(gatewayMB) MB from a server on loopback, 5 times each way, interleaved,
            medians. Through the gateway: the client → `LoopbackForwarder` (the cage's 127.0.0.1), which hands the
            connection over the gateway's unix socket → `ConnectProxy` (allow-list, resolver, address check, budget,
            log) relaying it → the server. CPU: this
            process's user+system seconds per GB moved (server, client, and for the tunnel the forwarder and relay).

            | path | time | throughput | CPU s/GB |
            |---|---|---|---|
            | direct loopback | \(String(format: "%.2f", d)) s | \(Int(Double(gatewayMB) / d)) MB/s | \(String(format: "%.2f", dc)) |
            | through the gateway | \(String(format: "%.2f", t)) s | \(Int(Double(gatewayMB) / t)) MB/s | \(String(format: "%.2f", tc)) |

            Through the gateway: \(Int((d / t * 100).rounded())) % of direct (the issue's target: at least 80 %).

            """
    }

    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}

/// Sends `bytes` zero bytes to every connection, then closes it.
final class DownloadServer: Sendable {
    private let listener: Listener
    var port: Int { listener.port }

    init(bytes: Int) throws {
        listener = try Listener()
        listener.start { c in
            defer { close(c) }
            let chunk = [UInt8](repeating: 0, count: 256 * 1024)
            var left = bytes
            while left > 0 {
                let n = chunk.withUnsafeBytes { send(c, $0.baseAddress, min(left, chunk.count), Int32(MSG_NOSIGNAL)) }
                if n <= 0 { break }
                left -= n
            }
        }
    }

    func stop() { listener.stop() }
}
