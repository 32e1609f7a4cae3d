import ArgumentParser
import Foundation
import GRDB
import HiveBroker
import HiveClient
import HiveHost
import HiveWire
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The dashboard under load: page time with many agents and a big broker, and how late server-sent
/// events arrive at many subscribers while messages flow.
extension Bench {
    func dashboard() async throws -> String {
        let dir = URL(filePath: String(cString: mkdtemp(strdup("/tmp/hd-XXXXXX"))!))
        defer { try? FileManager.default.removeItem(at: dir) }
        chmod(dir.path, 0o755)
        let root = dir.appending(path: "root")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        // Fill the broker before core opens it: 50 agents, 100,000 messages among them.
        do {
            let broker = try Broker(path: root.appending(path: "broker.sqlite").path)
            let names = (0..<dashboardAgents).map { "agent-\($0)" }
            for n in names { _ = try broker.register(try AgentName(n)) }
            try await broker.pool.write { db in
                let insert = try db.makeStatement(sql: """
                    INSERT INTO message (sender, recipient, body, sent_at, delivered_at, acked_at, broadcast, redelivered) VALUES (?, ?, ?, ?, ?, ?, 0, 0)
                    """)
                let now = Date().timeIntervalSince1970
                for i in 0..<dashboardMessages {
                    let t = now - Double(dashboardMessages - i)
                    try insert.execute(arguments: [names[i % names.count], names[(i * 7 + 1) % names.count], "message \(i) with some text", t, t, t])
                }
            }
        }
        let core = try await CoreProcess.start(in: dir, synchronous: .full, extra: ["--cage", "none", "--forge-listen", "off"])
        defer { core.stop() }
        let port = TCPPort.free()
        let web = Process()
        web.executableURL = core.hive
        web.arguments = ["web", "--run-dir", core.runDir.path, "--listen", "127.0.0.1:\(port)", "--log-level", "warning"]
        try web.run()
        defer { kill(web.processIdentifier, SIGTERM); web.waitUntilGone() }
        var cookie = ""
        for _ in 0..<100 {
            if let token = try? String(contentsOf: core.runDir.appending(path: "dashboard-token"), encoding: .utf8),
               let r = try? Self.http(port, "GET /login?token=\(token.trimmingCharacters(in: .whitespacesAndNewlines))"),
               let set = r.split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("set-cookie:") }) {
                cookie = String(set.dropFirst("set-cookie:".count).split(separator: ";")[0]).trimmingCharacters(in: .whitespaces)
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard !cookie.isEmpty else { throw ValidationError("hive web did not come up") }

        // Page time: the whole dashboard (snapshot from core, rendered page), 50 times.
        var pages: [Double] = []
        for _ in 0..<50 {
            let clock = ContinuousClock(), start = clock.now
            let r = try Self.http(port, "GET /", headers: ["Cookie": cookie])
            pages.append((clock.now - start).seconds * 1000)
            guard r.hasPrefix("HTTP/1.1 200") else { throw ValidationError("the dashboard answered \(r.prefix(40))") }
        }
        let snapshotConn = try HiveConnection(path: core.runDir.appending(path: "web.sock").path)
        var snapshots: [Double] = []
        for _ in 0..<50 {
            let clock = ContinuousClock(), start = clock.now
            _ = try await snapshotConn.call(SnapshotCommand())
            snapshots.append((clock.now - start).seconds * 1000)
        }

        // SSE lag: subscribers read /events while messages flow at `rate` a second; each message carries
        // its send time.
        let subscribers = dashboardSubscribers, rate = 500, seconds = 5
        let session = cookie
        let lags = Mutex<[Double]>([])
        let seq = try await snapshotConn.call(SnapshotCommand()).seq
        let stop = Mutex(false), finished = DispatchSemaphore(value: 0)
        let readers = (0..<subscribers).map { _ in
            Thread {
                guard let fd = try? Self.connect(port) else { return }
                defer { close(fd) }
                _ = UnixSocket.writeAll(fd, Data("GET /events?after=\(seq) HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: \(session)\r\n\r\n".utf8))
                var tv = timeval(tv_sec: 1, tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                var buf = [UInt8](repeating: 0, count: 65536), pending = ""
                var mine: [Double] = []
                while !stop.withLock({ $0 }) {
                    let n = recv(fd, &buf, buf.count, 0)
                    if n == 0 { break }
                    guard n > 0 else { continue }
                    let now = Date().timeIntervalSince1970
                    pending += String(decoding: buf[..<n], as: UTF8.self)
                    while let r = pending.range(of: "sent-at ") {
                        let tail = pending[r.upperBound...]
                        guard let stop = tail.firstIndex(where: { !($0.isNumber || $0 == ".") }) else { break }
                        if let t = Double(tail[..<stop]) { mine.append((now - t) * 1000) }
                        pending = String(tail[stop...])
                    }
                }
                lags.withLock { $0 += mine }
                finished.signal()
            }
        }
        readers.forEach { $0.start() }
        try await Task.sleep(for: .milliseconds(500))
        let admin = try core.admin()
        let interval = 1.0 / Double(rate)
        let begin = Date()
        // How many threads core runs while every subscriber is connected (each long-poll on web.sock is one).
        func coreThreads() -> Int {
            let status = (try? String(contentsOfFile: "/proc/\(core.process.processIdentifier)/status", encoding: .utf8)) ?? ""
            return Int(status.split(separator: "\n").first { $0.hasPrefix("Threads:") }?.split(separator: "\t").last ?? "") ?? 0
        }
        var threads = coreThreads()
        for i in 0..<(rate * seconds) {
            if i % rate == 0 { threads = max(threads, coreThreads()) }
            let due = begin.addingTimeInterval(Double(i) * interval)
            let wait = due.timeIntervalSinceNow
            if wait > 0 { usleep(UInt32(wait * 1_000_000)) }
            _ = try await admin.call(SendCommand(to: "agent-\(i % dashboardAgents)", body: "sent-at \(Date().timeIntervalSince1970) "))
        }
        try await Task.sleep(for: .seconds(2)) // the last frames arrive
        stop.withLock { $0 = true }
        for _ in 0..<subscribers { _ = finished.wait(timeout: .now() + 5) }
        let all = lags.withLock { $0 }.sorted()
        func pct(_ v: [Double], _ p: Double) -> String { v.isEmpty ? "n/a" : String(format: "%.1f ms", v[min(v.count - 1, Int(Double(v.count) * p))]) }
        pages.sort(); snapshots.sort()
        let date = ISO8601DateFormatter().string(from: Date())
        return """
            ## Dashboard run of \(date)

            Machine: \(ProcessInfo.processInfo.processorCount) cores; release build; broker FULL with \(dashboardAgents) agents and \(dashboardMessages) messages;
            `hive web` unprivileged, over loopback HTTP.

            | what | p50 | p95 | max |
            |---|---|---|---|
            | GET / (session cookie; snapshot from core + page), 50 times | \(pct(pages, 0.5)) | \(pct(pages, 0.95)) | \(pct(pages, 1)) |
            | `snapshot` on web.sock alone (core's part) | \(pct(snapshots, 0.5)) | \(pct(snapshots, 0.95)) | \(pct(snapshots, 1)) |

            SSE lag, \(subscribers) subscribers on `/events` while \(rate) messages a second are sent for \(seconds) s (send → frame read
            by the subscriber): \(all.count) frames (of \(subscribers * rate * seconds)), p50 \(pct(all, 0.5)), p99 \(pct(all, 0.99)), max \(pct(all, 1)).
            Core ran at most \(threads) threads meanwhile (`hive web` shares one long-poll on web.sock among all subscribers).

            """
    }

    static func connect(_ port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0 else { close(fd); throw ValidationError("cannot connect to port \(port)") }
        return fd
    }

    /// One HTTP/1.1 request with Connection: close; the whole response as text.
    static func http(_ port: Int, _ requestLine: String, headers: [String: String] = [:]) throws -> String {
        let fd = try connect(port)
        defer { close(fd) }
        var head = "\(requestLine) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        _ = UnixSocket.writeAll(fd, Data((head + "\r\n").utf8))
        var out = Data(), buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            out.append(contentsOf: buf[..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
