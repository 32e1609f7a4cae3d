import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HiveClient
import HiveWire
#if canImport(Glibc)
import Glibc
#endif

/// Push and clone of a repo with one incompressible blob through the forge (git smart HTTP via core),
/// beside cloning the same bare repo straight from disk, in the same run.
extension Bench {
    func forgeTransfer() async throws -> String {
        let dir = URL(filePath: String(cString: mkdtemp(strdup("/tmp/hg-XXXXXX"))!))
        defer { try? FileManager.default.removeItem(at: dir) }
        let core = try await CoreProcess.start(in: dir, synchronous: .full, extra: ["--cage", "none", "--forge-listen", "127.0.0.1:0"])
        defer { core.stop() }
        let admin = try core.admin()
        _ = try await admin.call(SpawnCommand(name: "bench"))
        guard let base = try await admin.call(InfoCommand()).forge else { throw ValidationError("the core runs no forge") }
        let tokenFile = dir.appending(path: "root/agents/bench/harness/forge-token")
        let token = try String(contentsOf: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)

        func createRepo(_ name: String) async throws {
            var request = URLRequest(url: URL(string: "\(base)/api/v1/user/repos")!)
            request.httpMethod = "POST"
            request.setValue("token \(token)", forHTTPHeaderField: "Authorization")
            request.httpBody = Data(#"{"name":"\#(name)"}"#.utf8)
            let (_, response) = try await URLSession.shared.data(for: request)
            guard (response as? HTTPURLResponse)?.statusCode == 201 else { throw ValidationError("could not create the repo \(name)") }
        }

        let work = dir.appending(path: "work")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        var env = ["PATH": "/usr/bin:/bin", "HOME": dir.path, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"]
        env.merge(Self.forgeCredentials(base: base, tokenFile: tokenFile.path)) { $1 }
        try Self.git(["init", "-q", "-b", "main"], in: work, env: env)
        let size = forgeMB << 20
        var blob = [UInt8](repeating: 0, count: size)
        var rng = SystemRandomNumberGenerator()
        for i in stride(from: 0, to: size - 7, by: 8) { withUnsafeBytes(of: rng.next() as UInt64) { for (j, b) in $0.enumerated() { blob[i + j] = b } } }
        try Data(blob).write(to: work.appending(path: "blob.bin"))
        try Self.git(["add", "blob.bin"], in: work, env: env)
        try Self.git(["-c", "user.name=bench", "-c", "user.email=b@x", "commit", "-qm", "blob"], in: work, env: env)

        func timed(_ body: () throws -> Void) rethrows -> Double {
            let clock = ContinuousClock()
            let start = clock.now
            try body()
            return (clock.now - start).seconds
        }
        var push: [Double] = [], clone: [Double] = [], local: [Double] = [], noLocal: [Double] = [], pushLocal: [Double] = []
        for round in 0..<3 {
            // A new repo each round, so every push uploads the whole pack.
            try await createRepo("big\(round)")
            let url = "\(base)/bench/big\(round).git"
            let bare = dir.appending(path: "root/forge/repos/bench/big\(round).git").path
            push.append(try timed { try Self.git(["push", "-q", url, "main"], in: work, env: env) })
            let plain = dir.appending(path: "plain-\(round).git")
            try Self.git(["init", "-q", "--bare", plain.path], in: dir, env: env)
            pushLocal.append(try timed { try Self.git(["push", "-q", plain.path, "main"], in: work, env: env) })
            for (label, args) in [("clone", ["clone", "-q", url]), ("local", ["clone", "-q", bare]), ("nolocal", ["clone", "-q", "--no-local", bare])] {
                let target = dir.appending(path: "\(label)-\(round)")
                let t = try timed { try Self.git(args + [target.path], in: dir, env: env) }
                try? FileManager.default.removeItem(at: target)
                switch label { case "clone": clone.append(t); case "local": local.append(t); default: noLocal.append(t) }
            }
        }
        let coreRSS = Self.memoryKiB(core.process.processIdentifier)["VmRSS"] ?? 0
        func row(_ what: String, _ t: [Double]) -> String {
            let s = t.sorted()
            return "| \(what) | \(String(format: "%.2f", s[0])) s | \(String(format: "%.2f", s[s.count / 2])) s | \(String(format: "%.0f", Double(forgeMB) / s[s.count / 2])) MB/s |"
        }
        let date = ISO8601DateFormatter().string(from: Date())
        return """
            ## Forge transfer run of \(date)

            Machine: \(ProcessInfo.processInfo.processorCount) cores; release build. One commit holding \(forgeMB) MB of random bytes
            (incompressible); 3 rounds, each pushing to a new repo (the whole pack every time) and cloning it three ways.

            | transfer | min | median | throughput (median) |
            |---|---|---|---|
            \(row("push through the forge (git smart HTTP → core → git http-backend)", push))
            \(row("`git push` to a bare repo on disk (pack over pipes, no HTTP)", pushLocal))
            \(row("clone through the forge", clone))
            \(row("plain `git clone` of the same bare repo from disk (hardlinks)", local))
            \(row("`git clone --no-local` of the same bare repo (pack over pipes, no HTTP)", noLocal))

            Core RSS after the runs: \(coreRSS / 1024) MiB.

            """
    }

    static func forgeCredentials(base: String, tokenFile: String) -> [String: String] {
        let origin = base.replacingOccurrences(of: "/forge", with: "")
        return ["GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "credential.\(origin).helper",
                "GIT_CONFIG_VALUE_0": "!f() { test \"$1\" = get && echo username=bench && echo \"password=$(cat \(tokenFile))\"; }; f"]
    }

    static func git(_ args: [String], in dir: URL, env: [String: String]) throws {
        let p = Process()
        p.executableURL = URL(filePath: "/usr/bin/git")
        p.arguments = args
        p.currentDirectoryURL = dir
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilGone()
        guard p.terminationStatus == 0 else { throw ValidationError("git \(args.prefix(2).joined(separator: " ")) failed") }
    }
}
