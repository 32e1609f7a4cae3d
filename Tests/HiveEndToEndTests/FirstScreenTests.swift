import Foundation
import HiveClient
import HiveWire
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The dashboard's first screen, in headless Chromium at a laptop's and a phone's size. The screenshots
/// are kept: `$HIVE_TEST_ARTIFACTS`, else `.build/test-artifacts/` of the package.
@Suite("Dashboard first screen", .serialized, .timeLimit(.minutes(3)))
struct FirstScreenTests {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    static var artifacts: URL {
        if let dir = ProcessInfo.processInfo.environment["HIVE_TEST_ARTIFACTS"], !dir.isEmpty { return URL(filePath: dir) }
        // Tests/HiveEndToEndTests/<this file> -> the package.
        return URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appending(path: ".build/test-artifacts")
    }

    /// Runs headless Chromium at `size` on `url` with `mode` (`--dump-dom` or `--screenshot=FILE`); its stdout.
    static func chrome(_ hive: LiveHive, _ url: String, size: (Int, Int), _ mode: String) throws -> String {
        let p = Process()
        p.executableURL = URL(filePath: chromium!)
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                       "--user-data-dir=\(hive.dir.path)/chrome-\(UUID().uuidString)", "--window-size=\(size.0),\(size.1)",
                       "--timeout=4000", mode, url]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let pid = p.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 40) { kill(pid, SIGKILL) } // never hang the suite
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilGone()
        return String(decoding: data, as: UTF8.self)
    }

    /// A PNG's size, how many of its rows have anything but the page's background in their rightmost
    /// pixel (content cut off at the edge), and the share of pixels that are not background (something
    /// was drawn). Decoded with Python's zlib: no image library needed.
    static func examine(_ png: URL) throws -> (width: Int, height: Int, edgeRows: Int, inked: Double) {
        let script = #"""
        import sys, zlib, struct
        d = open(sys.argv[1], 'rb').read()
        assert d[:8] == b'\x89PNG\r\n\x1a\n'
        i, idat = 8, b''
        while i < len(d):
            n, t = struct.unpack('>I4s', d[i:i + 8]); c = d[i + 8:i + 8 + n]; i += 12 + n
            if t == b'IHDR': w, h, depth, ct = struct.unpack('>IIBB', c[:10])
            elif t == b'IDAT': idat += c
        raw = zlib.decompress(idat); bpp = {2: 3, 6: 4}[ct]; stride = w * bpp
        prev = bytearray(stride); p = 0; edge = 0; ink = 0; bg = (250, 250, 250)
        for y in range(h):
            f = raw[p]; line = bytearray(raw[p + 1:p + 1 + stride]); p += 1 + stride
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0; b = prev[x]; cc = prev[x - bpp] if x >= bpp else 0
                if f == 1: line[x] = (line[x] + a) & 255
                elif f == 2: line[x] = (line[x] + b) & 255
                elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
                elif f == 4:
                    pa, pb, pc = abs(b - cc), abs(a - cc), abs(a + b - 2 * cc)
                    line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else cc)) & 255
            if tuple(line[stride - bpp:stride - bpp + 3]) != bg: edge += 1
            ink += sum(1 for x in range(0, stride, bpp) if tuple(line[x:x + 3]) != bg)
            prev = line
        print(w, h, edge, ink / (w * h))
        """#
        let p = Process()
        p.executableURL = URL(filePath: "/usr/bin/python3")
        p.arguments = ["-c", script, png.path]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilGone()
        let f = String(decoding: data, as: UTF8.self).split(separator: " ").map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }
        guard f.count == 4, let w = Int(f[0]), let h = Int(f[1]), let e = Int(f[2]), let i = Double(f[3]) else {
            throw HiveClientError.protocolError("could not read \(png.path)")
        }
        return (w, h, e, i)
    }

    @Test("what is happening and what it costs, first: the agent in a turn with its elapsed time, the rate-limited and over-budget agents and why, today's spend, what waits for the operator; it fits a phone's width and a laptop's", .enabled(if: chromium != nil))
    func firstScreen() async throws {
        let hive = try LiveHive()
        let script: [String: Any] = ["by_prompt": [
            ["contains": "think long", "step": ["kind": "slow", "seconds": 90]],
            ["contains": "limit me", "step": ["kind": "rate_limited", "resets_in": 3600]],
        ]]
        try await hive.start(cage: "process", environment: try hive.fakeClaudeEnvironment(script: script))
        for name in ["iris", "bob", "carol"] { _ = try await hive.spawn(name) }
        for name in ["iris", "bob", "carol"] {
            try await hive.eventually("\(name) up") { try await hive.agentRow(name)?.state == .idle }
        }
        // carol spends (a turn costs the stand-in's 0.01 USD), then a cap below that holds her next turn.
        _ = try await hive.admin().call(SendCommand(to: "carol", body: "hello"))
        try await hive.eventually("carol spent") { (try await hive.agentRow("carol")?.todayUsd ?? 0) > 0 }
        _ = try await hive.admin().call(BudgetCommand(agent: "carol", set: Budget(usdPerDay: 0.001)))
        _ = try await hive.admin().call(SendCommand(to: "carol", body: "another"))
        // iris's turn starts before bob's limit holds their shared credential: a hold stops the next turn,
        // never the running one.
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "think long about the roadmap"))
        try await hive.eventually("iris thinking") { try await hive.agentRow("iris")?.state == .thinking }
        _ = try await hive.admin().call(SendCommand(to: "bob", body: "limit me"))
        try await hive.eventually("iris thinking, bob rate-limited, carol over budget") {
            let list = try await hive.admin().call(ListCommand()).agents
            let state = { (n: String) in list.first { $0.name == n }?.state }
            return state("iris") == .thinking && state("bob") == .rateLimited && state("carol") == .overBudget
        }
        let iris = try #require(try await hive.agentRow("iris"))
        let since = try #require(iris.stateSince, "core says since when iris is thinking")
        #expect(abs(since - Date().timeIntervalSince1970) < 30)
        _ = try await hive.agent("bob").call(AskCommand(question: "Ship it on Friday?", options: ["yes", "no"]))
        try await Task.sleep(for: .seconds(2)) // a visible elapsed time

        let (_, port) = try await hive.startWeb()
        let url = "http://127.0.0.1:\(port)/login?token=\(try hive.dashboardToken())"
        let dom = try Self.chrome(hive, url, size: (390, 844), "--dump-dom")
        func card(_ id: String) throws -> String {
            // From the card's body to where the next card (or the section) begins.
            let start = try #require(dom.range(of: "id=\"\(id)\""), "\(id) is on the page")
            let rest = dom[start.upperBound...]
            let end = [rest.range(of: "class=\"card"), rest.range(of: "</section>")].compactMap { $0?.lowerBound }.min() ?? rest.endIndex
            return String(rest[..<end])
        }
        let turns = try card("now-turns")
        #expect(turns.contains(">iris</a>") && turns.contains("class=\"elapsed\""), "iris is in a turn, with its time: \(turns.prefix(400))")
        #expect(turns.range(of: #">\d+s<|>\d+m \d\ds<"#, options: .regularExpression) != nil, "the elapsed time reads as seconds or minutes")
        #expect(!turns.contains(">bob</a>"))
        let held = try card("now-held")
        #expect(held.contains(">bob</a>") && held.contains("until "), "bob is held by his rate limit, with its end")
        #expect(held.contains(">carol</a>") && held.contains("over_budget"), "carol is held by her budget")
        let spend = try card("now-spend")
        #expect(spend.contains("class=\"big\">$0.0"), "today's spend is shown: \(spend.prefix(200))")
        let waiting = try card("now-waiting")
        #expect(waiting.contains("questions to you</a></span><span><b>1</b>"), "bob's question waits for the operator: \(waiting.prefix(300))")
        // The cards come before everything else on the page.
        let order = ["id=\"now\"", "id=\"approvals-section\"", "id=\"questions-section\"", "<h2>Agents</h2>"].map { dom.range(of: $0)?.lowerBound }
        #expect(order.allSatisfy { $0 != nil } && zip(order, order.dropFirst()).allSatisfy { $0! < $1! }, "first: now, approvals, questions, then agents")

        try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
        for (label, size) in [("phone", (390, 844)), ("laptop", (1366, 900))] {
            let shot = Self.artifacts.appending(path: "first-screen-\(label).png")
            try? FileManager.default.removeItem(at: shot)
            _ = try Self.chrome(hive, url, size: size, "--screenshot=\(shot.path)")
            let seen = try Self.examine(shot)
            #expect(seen.width == size.0 && seen.height == size.1, "\(label): \(seen)")
            #expect(seen.inked > 0.02, "\(label): the page drew something (\(seen.inked))")
            #expect(seen.edgeRows == 0, "\(label): nothing runs off the right edge (\(seen.edgeRows) rows reach it); see \(shot.path)")
        }
    }
}
