import Foundation
import HiveClient
import HiveFuzz
import HiveHost
import HiveWire
#if canImport(Glibc)
import Glibc
#endif

/// The socket fuzzer against a real core: lines a second per socket and core's RSS before and after.
/// Same run, the floors: the generator alone, and valid one-line requests (`whoami`, `list`) on the same
/// sockets (a round trip with the least work core can do).
extension Bench {
    func fuzz() async throws -> String {
        let dir = URL(filePath: String(cString: mkdtemp(strdup("/tmp/hz-XXXXXX"))!))
        defer { try? FileManager.default.removeItem(at: dir) }
        let core = try await CoreProcess.start(in: dir, synchronous: .full)
        defer { core.stop() }
        _ = try await core.admin().call(SpawnCommand(name: "bench"))
        let pid = core.process.processIdentifier
        let rssBefore = Self.memoryKiB(pid)["VmRSS"] ?? 0

        let clock = ContinuousClock()
        var start = clock.now
        let bytes = FuzzRun.lines(fuzzLines, seed: 1).reduce(0) { $0 + $1.count }
        let generated = Double(fuzzLines) / (clock.now - start).seconds

        let sockets: [(String, String, String)] = [
            ("an agent's", core.runDir.appending(path: "agents/bench/mcp.sock").path, #"{"cmd":"whoami"}"#),
            ("the manager's", core.runDir.appending(path: "agents/manager/mcp.sock").path, #"{"cmd":"whoami"}"#),
            ("web", core.runDir.appending(path: "web.sock").path, #"{"cmd":"agent_config","agent":"bench"}"#),
            ("admin", core.runDir.appending(path: "host.sock").path, #"{"cmd":"info"}"#),
        ]
        var rows: [String] = []
        for (i, (label, path, valid)) in sockets.enumerated() {
            let lines = FuzzRun.lines(fuzzLines, seed: 100 + UInt64(i))
            start = clock.now
            let run = try FuzzRun.run(socket: path, lines: lines)
            let fuzzRate = Double(run.sent) / (clock.now - start).seconds
            let fd = try FuzzRun.connect(path)
            var pending = [UInt8]()
            let line = Data((valid + "\n").utf8)
            start = clock.now
            for _ in 0..<fuzzLines {
                _ = UnixSocket.writeAll(fd, line)
                _ = FuzzRun.readLine(fd, &pending, timeout: .seconds(10))
            }
            let floorRate = Double(fuzzLines) / (clock.now - start).seconds
            close(fd)
            let rss = Self.memoryKiB(pid)["VmRSS"] ?? 0
            rows.append("| \(label) | \(Int(fuzzRate)) | \(Int(floorRate)) | \(run.answered) | \(run.reconnects) | \(run.unanswered) | \(rss / 1024) MiB |")
        }
        let answers = (try? await core.admin().call(ListCommand())) != nil
        let date = ISO8601DateFormatter().string(from: Date())
        return """
            ## Socket fuzzer run of \(date)

            Machine: \(ProcessInfo.processInfo.processorCount) cores; \(Self.buildKind) build; core as uid \(getuid()), no cages. \(fuzzLines) lines per socket,
            one at a time (each answered before the next), seeded and made before the run; the generator makes \(Int(generated)) lines/s
            (\(bytes / fuzzLines) bytes on average). Floor: the same number of one valid request, same socket.
            Core's RSS before: \(rssBefore / 1024) MiB; after each socket, in its row. Core answered afterwards: \(answers).

            | socket | fuzz lines/s | floor lines/s | answered | connections ended by core | unanswered | core RSS after |
            |---|---|---|---|---|---|---|
            \(rows.joined(separator: "\n"))

            """
    }
}
