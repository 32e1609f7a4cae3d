import Foundation
import AsyncHTTPClient
import HiveGate
import HiveHost
import HiveWire
import Logging
import ModelStandIn
#if canImport(Glibc)
import Glibc
#endif

/// The gated network's added latency on the model path: the time to the first token of a streamed
/// answer from the stand-in API, straight on loopback against through the cage's forwarder and core's
/// model gateway (model check, credential swap, metering, the pool to the API), `gatewayLatencyRuns`
/// requests each way, interleaved, a new client connection each (as the CLI's first request of a turn).
extension Bench {
    func gatewayLatency() async throws -> String {
        let api = try await ModelStandIn()
        let dir = URL(filePath: String(cString: mkdtemp(strdup("/tmp/hl-XXXXXX"))!))
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        var approved = AgentConfig()
        approved.model = "sonnet"
        let config = approved
        let gateway = ModelGateway(path: dir.appending(path: GatedNetwork.modelSocket).path, owner: nil,
                                   route: .init(agent: "bench", credential: try StoredCredential(secret: "sk-ant-api03-bench"), approved: { "sonnet" },
                                                allowsModel: { config.allowsModel($0) }),
                                   upstream: api.baseURL, client: client, logger: Logger(label: "bench.gateway"), record: { _ in })
        try await gateway.start()
        let forwarder = try LoopbackForwarder(to: gateway.path)
        forwarder.start()

        // A request the size of a mid-session turn: `gatewayLatencyKB` of conversation before the model field.
        let filler = String(repeating: "the quick brown fox jumps over the lazy dog. ", count: gatewayLatencyKB * 1024 / 45)
        let body = Data(#"{"messages":[{"role":"user","content":"\#(filler)"}],"max_tokens":64,"stream":true,"model":"claude-sonnet-4-5-20250929"}"#.utf8)
        let head = "POST /v1/messages?beta=true HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nx-api-key: sk-ant-api03-placeholder\r\nanthropic-version: 2023-06-01\r\nConnection: close\r\nContent-Length: \(body.count)\r\n\r\n"
        let request = Data(head.utf8) + body

        /// Milliseconds from connecting to the first `content_block_delta` byte; reads the answer to its end.
        func firstToken(port: Int) throws -> Double {
            let start = ContinuousClock.now
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            guard IPAddress("127.0.0.1")!.withSockaddr(port: port, { Glibc.connect(fd, $0, $1) }) == 0 else { throw GatewayError("connect failed") }
            guard UnixSocket.writeAll(fd, request) else { throw GatewayError("write failed") }
            var buffer = [UInt8](repeating: 0, count: 65536)
            var seen = [UInt8]()
            var first: Double?
            let marker = Array("content_block_delta".utf8)
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n <= 0 { break }
                if first == nil {
                    seen += buffer[0..<n]
                    if seen.count >= marker.count, (0...(seen.count - marker.count)).contains(where: { seen[$0..<($0 + marker.count)].elementsEqual(marker) }) {
                        first = (ContinuousClock.now - start).seconds * 1000
                    }
                }
            }
            guard let first else { throw GatewayError("no token in the answer: \(String(decoding: seen.prefix(300), as: UTF8.self))") }
            return first
        }
        var direct: [Double] = [], through: [Double] = []
        for _ in 0..<20 { _ = try firstToken(port: api.port); _ = try firstToken(port: forwarder.port) } // warm both
        for _ in 0..<gatewayLatencyRuns {
            direct.append(try firstToken(port: api.port))
            through.append(try firstToken(port: forwarder.port))
        }
        forwarder.stop()
        await gateway.stop()
        try await client.shutdown()
        await api.stop()
        try? FileManager.default.removeItem(at: dir)
        func pct(_ xs: [Double], _ p: Double) -> Double { let s = xs.sorted(); return s[min(s.count - 1, Int(Double(s.count) * p))] }
        func row(_ name: String, _ xs: [Double]) -> String {
            "| \(name) | \(String(format: "%.2f", pct(xs, 0.5))) | \(String(format: "%.2f", pct(xs, 0.9))) | \(String(format: "%.2f", pct(xs, 0.99))) |"
        }
        let added50 = pct(through, 0.5) - pct(direct, 0.5), added99 = pct(through, 0.99) - pct(direct, 0.99)
        return """

            ## Gateway first-token latency run of \(ISO8601DateFormatter().string(from: Date()))

            Machine: 2 cores; \(Self.buildKind) build. \(gatewayLatencyRuns) streamed answers each way from the Messages-API stand-in,
            interleaved, each on a new client connection, with a \(body.count / 1024) KB request body. Through the gateway: the
            client → `LoopbackForwarder` (the cage's 127.0.0.1) → `model.sock` → `ModelGateway` (body collected, model
            checked, credential swapped, answer metered) → its kept-alive pool → the stand-in. Milliseconds from
            connect to the first `content_block_delta`.

            | path | p50 ms | p90 ms | p99 ms |
            |---|---|---|---|
            \(row("direct loopback", direct))
            \(row("through the gateway", through))

            Added by the gateway: \(String(format: "%.2f", added50)) ms at p50, \(String(format: "%.2f", added99)) ms at p99 (the issue's target: at most 2 ms at p99).

            """
    }
}
