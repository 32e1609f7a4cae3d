import Foundation
import HiveClient
import HiveHost
import HiveWire
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A bare HTTP/1.1 client over a unix socket (the test side of web.sock).
enum UnixHTTP {
    /// Sends one request and reads until the server closes or `readFor` passes; returns status and body.
    static func request(_ socketPath: String, _ method: String, _ path: String, headers: [String: String] = [:],
                        body: String = "", readFor: Duration = .seconds(10)) throws -> (status: Int, body: String) {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        guard UnixSocket.withAddress(socketPath, { connect(fd, $0, $1) }) == 0 else { throw HiveClientError.unreachable(path: socketPath, reason: "connect") }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: agent\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        _ = UnixSocket.writeAll(fd, Data((head + "\r\n" + body).utf8))
        let text = readResponse(fd, for: readFor)
        let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        let body = text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
        return (status, body)
    }

    static func json(_ socketPath: String, _ path: String, method: String = "GET") throws -> Any {
        let r = try request(socketPath, method, path)
        return try JSONSerialization.jsonObject(with: Data(dechunk(r.body).utf8))
    }

    /// Reads until the server closes, `readFor` passes, or `stop` is satisfied by what arrived.
    static func readResponse(_ fd: Int32, for readFor: Duration, until stop: ((String) -> Bool)? = nil) -> String {
        var tv = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var data = Data()
        var buf = [UInt8](repeating: 0, count: 65536)
        let deadline = ContinuousClock.now + readFor
        while ContinuousClock.now < deadline {
            let n = recv(fd, &buf, buf.count, 0)
            if n == 0 { break }
            if n > 0 {
                data.append(contentsOf: buf[..<n])
                if let stop, stop(String(decoding: data, as: UTF8.self)) { break }
            }
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Undoes chunked transfer encoding when the body uses it.
    static func dechunk(_ body: String) -> String {
        var out = ""
        var rest = Substring(body)
        while let nl = rest.range(of: "\r\n"), let size = Int(rest[..<nl.lowerBound], radix: 16) {
            if size == 0 { return out }
            let start = nl.upperBound
            guard let end = rest.index(start, offsetBy: size, limitedBy: rest.endIndex) else { return body }
            out += rest[start..<end]
            rest = rest[end...].dropFirst(2)
        }
        return out.isEmpty ? body : out
    }
}

@Suite("Harness HTTP endpoint", .timeLimit(.minutes(2)))
struct HarnessWebTests {
    @Test("state, events, stats and the live stream resume without gaps or duplicates")
    func endpoint() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        try hive.startAgent("iris")
        let web = hive.runDir.appending(path: "agents/iris/page/web.sock").path
        try await hive.eventually("web.sock is up") { FileManager.default.fileExists(atPath: web) }
        // The server tightens the socket to 0660 once it listens (created under the umask before that).
        try await hive.eventually("web.sock is 0660") {
            (try? FileManager.default.attributesOfItem(atPath: web)[.posixPermissions] as? Int) == 0o660
        }
        try await hive.eventually("idle") { (try? UnixHTTP.json(web, "/state") as? [String: Any])?["state"] as? String == "idle" }

        _ = try await hive.admin().call(SendCommand(to: "iris", body: "one"))
        try await hive.eventually("turn one") { try hive.turnStats("iris").count == 1 }
        let events = try UnixHTTP.json(web, "/events?after=0") as? [[String: Any]] ?? []
        let seqs = events.compactMap { ($0["seq"] as? NSNumber)?.int64Value }
        #expect(seqs == Array(1...Int64(seqs.count)), "seq is monotonic from 1 without gaps")
        #expect(events.contains { $0["kind"] as? String == "stdout" && ($0["body"] as? String)?.contains("\"type\":\"result\"") == true })
        let stats = try UnixHTTP.json(web, "/stats.json") as? [[String: Any]] ?? []
        #expect(stats.count == 1 && stats.first?["result_kind"] as? String == "ok")
        let report = try UnixHTTP.json(web, "/stats.json?range=24h") as? [String: Any] ?? [:]
        let buckets = report["buckets"] as? [[String: Any]] ?? []
        #expect(buckets.count == 24 && buckets.compactMap { ($0["turns"] as? NSNumber)?.intValue }.reduce(0, +) == 1)
        #expect((report["reminders"] as? [String: Any])?["attempts"] as? Int == 0, "the reminder rollup came from core")
        let chart = try UnixHTTP.request(web, "GET", "/stats?range=7d")
        #expect(chart.status == 200 && chart.body.contains("<svg") && chart.body.contains("1 turns"), "\(chart.body.prefix(500))")
        #expect(try UnixHTTP.request(web, "GET", "/stats?range=1y").status == 400)
        let inbox = try UnixHTTP.json(web, "/inbox") as? [String: Any] ?? [:]
        #expect((inbox["messages"] as? [[String: Any]])?.first?["body"] as? String == "one")
        #expect((inbox["unread"] as? NSNumber)?.intValue == 0)
        let state = try UnixHTTP.json(web, "/state") as? [String: Any] ?? [:]
        #expect((state["context_tokens"] as? NSNumber)?.intValue == 1110)
        // The page's total is ours (tokens × the price table), the same figure the turn's stats row holds.
        let turnCost = try hive.turnStats("iris").compactMap { Double($0["cost_usd"] ?? "") }.reduce(0, +)
        #expect(turnCost > 0 && abs(((state["total_cost_usd"] as? NSNumber)?.doubleValue ?? -1) - turnCost) < 1e-9)

        // Resume the stream from the middle: everything after that seq, then live events of a new turn.
        let resumeFrom = seqs[seqs.count / 2]
        let reader = Task { try UnixHTTP.request(web, "GET", "/events/stream", headers: ["Last-Event-ID": "\(resumeFrom)"], readFor: .seconds(8)) }
        try await Task.sleep(for: .milliseconds(500))
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "two"))
        let streamed = try await reader.value
        #expect(streamed.status == 200)
        let ids = streamed.body.split(whereSeparator: \.isNewline).compactMap { $0.hasPrefix("id: ") ? Int64($0.dropFirst(4)) : nil }
        #expect(ids.first == resumeFrom + 1, "\(streamed.body.prefix(300))")
        let first = try #require(ids.first), last = try #require(ids.last)
        #expect(ids == Array(first...last), "no gaps, no duplicates")
        #expect(last > seqs.last!, "live events of the second turn arrived")
        let note = try UnixHTTP.request(web, "POST", "/send", body: "please also update the notes")
        #expect(note.status == 200)
        try await hive.eventually("the note drove a turn") {
            hive.runs(of: "iris").contains { ($0["prompt"] as? String)?.contains("a note from your page: please also update the notes") == true }
        }
        #expect(try UnixHTTP.request(web, "POST", "/send", body: "").status == 400)
        let page = try UnixHTTP.request(web, "GET", "/")
        #expect(page.body.contains("href=\"stats\"") && page.body.contains("fetch('state')") && !page.body.contains("'/"),
                "links are relative, so the UI works under /agent/iris/")

        // The operator's runtime model: the next turn runs with it, until it is cleared. Only the operator
        // sets it: neither the agent's socket nor its harness's endpoint takes it.
        #expect(try hive.cli(["model", "iris", "--dangerously-skip"]).status != 0)
        #expect(try hive.cli(["model", "iris", "opus"]).out.contains("iris runs on opus from its next turn (its config says sonnet)"))
        #expect(try await hive.agent("iris").raw(#"{"cmd":"set_model","agent":"iris","model":"haiku"}"#)["ok"] as? Bool == false)
        #expect(try UnixHTTP.request(web, "POST", "/model", body: "haiku").status == 404)
        func argvModel() -> String? {
            let argv = hive.runs(of: "iris").last?["argv"] as? [String] ?? []
            return argv.firstIndex(of: "--model").map { argv[$0 + 1] }
        }
        var before = hive.runs(of: "iris").count
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "with opus"))
        try await hive.eventually("a turn with the chosen model") { hive.runs(of: "iris").count > before }
        #expect(argvModel() == "opus")
        #expect((try UnixHTTP.json(web, "/state") as? [String: Any])?["model_override"] as? String == "opus")
        #expect(try hive.cli(["model", "iris", "--clear"]).out.contains("runs on its config's model, sonnet"))
        before = hive.runs(of: "iris").count
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "back to sonnet"))
        try await hive.eventually("a turn after clearing") { hive.runs(of: "iris").count > before }
        #expect(argvModel() == "sonnet")
        #expect((try UnixHTTP.json(web, "/state") as? [String: Any])?["model_override"] == nil)
    }

    @Test("cancel stops the turn and its claude process group; new-session makes the next turn fresh")
    func actions() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        try hive.startAgent("iris", script: ["steps": [["kind": "slow", "seconds": 60], ["kind": "ok"], ["kind": "ok"]]])
        let web = hive.runDir.appending(path: "agents/iris/page/web.sock").path
        try await hive.eventually("web.sock is up") { FileManager.default.fileExists(atPath: web) }
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "long"))
        try await hive.eventually("the slow turn runs") { hive.runs(of: "iris").count == 1 }
        let pid = try #require((hive.runs(of: "iris").first?["pid"] as? NSNumber)?.int32Value)
        let cancelled = try UnixHTTP.json(web, "/cancel", method: "POST") as? [String: Any]
        #expect(cancelled?["cancelled"] as? Bool == true)
        try await hive.eventually("the cancelled turn is recorded and retried") {
            let rows = try hive.turnStats("iris")
            return rows.count == 2 && rows[0]["detail"] == "cancelled"
        }
        #expect(kill(pid, 0) != 0 || (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.contains(" Z ") == true,
                "the claude process is gone")
        _ = try UnixHTTP.json(web, "/new-session", method: "POST")
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "after"))
        try await hive.eventually("third turn") { try hive.turnStats("iris").count == 3 }
        #expect(try hive.turnStats("iris").map { $0["session_action"] } == ["fresh", "continue", "fresh"])
    }
}
