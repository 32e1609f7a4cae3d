import Foundation
import HiveBroker
import HiveClient
import HiveWire
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `hive install` into a temporary root (`--prefix`): systemd is not PID 1 on the test machines, so the
/// units are checked with `systemd-analyze verify` and run the way systemd would run them (their
/// `ExecStart` with the settings file's values).
@Suite("Service install and upgrade", .serialized, .timeLimit(.minutes(3)))
struct ServiceInstallTests {
    /// A prefix holding what a host has and a unit may name: the host's own systemd units (targets).
    static func prefix(in hive: LiveHive) throws -> URL {
        let prefix = hive.dir.appending(path: "sysroot")
        try FileManager.default.createDirectory(at: prefix.appending(path: "usr/lib/systemd"), withIntermediateDirectories: true)
        let cp = try run("/bin/cp", ["-a", "/usr/lib/systemd/system", prefix.appending(path: "usr/lib/systemd/").path])
        #expect(cp.status == 0, "\(cp.err)")
        return prefix
    }

    static func run(_ tool: String, _ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(filePath: tool)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilGone()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// `systemd-analyze verify` of `units` inside `prefix`: its status and everything it said.
    static func verify(_ prefix: URL, _ units: [String]) throws -> (status: Int32, said: String) {
        let r = try run("/usr/bin/systemd-analyze", ["verify", "--root=\(prefix.path)"] + units)
        return (r.status, (r.out + r.err).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The unit's `ExecStart`, expanded the way systemd does with `EnvironmentFile=` (`${X}` one word,
    /// `$X` split on spaces), its binary and `HIVE_ROOT` looked up inside the prefix (as if it were `/`).
    /// The run dir is taken as it is: the tests give a short one (socket paths are limited).
    static func execStart(unit: URL, environmentFile: URL, prefix: URL) throws -> (executable: URL, args: [String]) {
        let text = try String(contentsOf: unit, encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("ExecStart=") })
        var env: [String: String] = [:]
        for l in try String(contentsOf: environmentFile, encoding: .utf8).split(separator: "\n") where !l.hasPrefix("#") {
            guard let eq = l.firstIndex(of: "=") else { continue }
            env[String(l[..<eq])] = String(l[l.index(after: eq)...])
        }
        env["HIVE_ROOT"] = env["HIVE_ROOT"].map { prefix.appending(path: String($0.dropFirst())).path }
        var words: [String] = []
        for word in line.dropFirst("ExecStart=".count).split(separator: " ").map(String.init) {
            if word.hasPrefix("${") { words.append(env[String(word.dropFirst(2).dropLast())] ?? "") }
            else if word.hasPrefix("$") { words += (env[String(word.dropFirst())] ?? "").split(separator: " ").map(String.init) }
            else { words.append(word) }
        }
        return (prefix.appending(path: String(words[0].dropFirst())), Array(words.dropFirst()))
    }

    @Test("hive install lays out units that systemd-analyze verify accepts, the dashboard's account with the ids core uses, a 0600 settings file, and a link to a versioned binary; uninstall keeps the data unless --purge")
    func installLayout() async throws {
        let hive = try LiveHive()
        let prefix = try Self.prefix(in: hive)
        let put = try hive.cli(["install", "--prefix", prefix.path, "--listen", "127.0.0.1:7300"])
        #expect(put.status == 0, "\(put.out)\(put.err)")
        let units = ["hyperhive.service", "hyperhive-web.service"]
        for unit in units {
            #expect(FileManager.default.fileExists(atPath: prefix.appending(path: "etc/systemd/system/\(unit)").path))
        }
        let checked = try Self.verify(prefix, units)
        #expect(checked.status == 0 && checked.said.isEmpty, "systemd-analyze verify: \(checked.said)")
        // The check can fail: a unit with a key systemd does not know, or a binary that is not there.
        let web = prefix.appending(path: "etc/systemd/system/hyperhive-web.service")
        let good = try String(contentsOf: web, encoding: .utf8)
        try (good.replacingOccurrences(of: "NoNewPrivileges=yes", with: "NoNewPrivilege=yes")).write(to: web, atomically: true, encoding: .utf8)
        let typo = try Self.verify(prefix, ["hyperhive-web.service"])
        #expect(typo.said.contains("Unknown key"), "\(typo.said)")
        try good.write(to: web, atomically: true, encoding: .utf8)

        let group = try String(contentsOf: prefix.appending(path: "etc/group"), encoding: .utf8)
        #expect(group.contains("hyperhive-web:x:19999:"), "\(group)")
        let passwd = try String(contentsOf: prefix.appending(path: "etc/passwd"), encoding: .utf8)
        #expect(passwd.contains("hyperhive-web:x:19999:19999:"), "\(passwd)")
        var st = stat()
        let env = prefix.appending(path: "etc/hyperhive/hyperhive.env")
        #expect(stat(env.path, &st) == 0 && st.st_mode & 0o777 == 0o600, "the settings may hold a credential")
        let settings = try String(contentsOf: env, encoding: .utf8)
        #expect(settings.contains("HIVE_WEB_LISTEN=127.0.0.1:7300") && settings.contains("HIVE_ROOT=/var/lib/hyperhive"))
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: prefix.appending(path: "usr/local/bin/hive").path)
        #expect(link.hasPrefix("../lib/hyperhive/hive-"), "a relative link, the same file in a prefix as on a host: \(link)")
        let installed = try Data(contentsOf: prefix.appending(path: "usr/local/bin/hive"))
        #expect(installed == (try Data(contentsOf: LiveHive.binary)))
        for dir in ["var/lib/hyperhive", "run/hyperhive"] {
            #expect(FileManager.default.fileExists(atPath: prefix.appending(path: dir).path))
        }

        // An operator's settings survive a second install; uninstall keeps the data and settings.
        try (settings + "HIVE_CORE_ARGS=--log-level debug\n").write(to: env, atomically: true, encoding: .utf8)
        try Data("precious".utf8).write(to: prefix.appending(path: "var/lib/hyperhive/broker.sqlite"))
        #expect(try hive.cli(["install", "--prefix", prefix.path]).status == 0)
        #expect(try String(contentsOf: env, encoding: .utf8).contains("--log-level debug"))
        let gone = try hive.cli(["uninstall", "--prefix", prefix.path])
        #expect(gone.status == 0, "\(gone.err)")
        for unit in units { #expect(!FileManager.default.fileExists(atPath: prefix.appending(path: "etc/systemd/system/\(unit)").path)) }
        #expect(!FileManager.default.fileExists(atPath: prefix.appending(path: "usr/local/lib/hyperhive").path))
        #expect(FileManager.default.fileExists(atPath: prefix.appending(path: "var/lib/hyperhive/broker.sqlite").path))
        #expect(FileManager.default.fileExists(atPath: env.path))
        let purged = try hive.cli(["uninstall", "--prefix", prefix.path, "--purge"])
        #expect(purged.status == 0, "\(purged.err)")
        #expect(!FileManager.default.fileExists(atPath: prefix.appending(path: "var/lib/hyperhive").path))
        #expect(!FileManager.default.fileExists(atPath: env.path))
        #expect(FileManager.default.fileExists(atPath: prefix.appending(path: "etc/hyperhive/uid-ranges").path), "every hive's uid claims stay")
        // A HIVE_ROOT that holds no hive is never removed.
        #expect(try hive.cli(["install", "--prefix", prefix.path]).status == 0)
        try (try String(contentsOf: env, encoding: .utf8)).replacingOccurrences(of: "HIVE_ROOT=/var/lib/hyperhive", with: "HIVE_ROOT=\"/usr\"")
            .write(to: env, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: prefix.appending(path: "usr/keep"), withIntermediateDirectories: true)
        let refused = try hive.cli(["uninstall", "--prefix", prefix.path, "--purge"])
        #expect(refused.status != 0 && refused.err.contains("holds no hive"), "\(refused.err)")
        #expect(FileManager.default.fileExists(atPath: prefix.appending(path: "usr/keep").path))
    }

    @Test("an upgrade over a running install backs the hive up, moves the link, and the restarted unit runs the new binary: every unacked message comes back (the handed-out ones flagged redelivered), no acked one does; --rollback returns to the old binary")
    func upgradeOverRunningInstall() async throws {
        let hive = try LiveHive()
        let prefix = try Self.prefix(in: hive)
        #expect(try hive.cli(["install", "--prefix", prefix.path]).status == 0)
        // The operator's settings: a short run dir (socket paths are limited), no cages.
        let env = prefix.appending(path: "etc/hyperhive/hyperhive.env")
        var settings = try String(contentsOf: env, encoding: .utf8)
        settings = settings.replacingOccurrences(of: "HIVE_RUN_DIR=/run/hyperhive", with: "HIVE_RUN_DIR=\(hive.runDir.path)")
        settings = settings.replacingOccurrences(of: "HIVE_CORE_ARGS=\n", with: "HIVE_CORE_ARGS=--cage none --forge-listen 127.0.0.1:0\n")
        try settings.write(to: env, atomically: true, encoding: .utf8)
        let unit = prefix.appending(path: "etc/systemd/system/hyperhive.service")
        let first = try Self.execStart(unit: unit, environmentFile: env, prefix: prefix)
        try await hive.startCore(first.args, executable: first.executable)
        let oldTarget = (try FileManager.default.destinationOfSymbolicLink(atPath: first.executable.path) as NSString).lastPathComponent

        // Traffic: 20 messages for iris; 10 handed out, 5 of those acked, 5 still in her turn.
        try await hive.spawn("iris")
        for n in 0..<20 { _ = try await hive.admin().call(SendCommand(to: "iris", body: "job \(n)")) }
        let handed = try await hive.agent("iris").call(RecvCommand(waitSeconds: 0, max: 10)).messages
        #expect(handed.count == 10)
        let acked = Set(handed.prefix(5).map(\.id)), inFlight = Set(handed.dropFirst(5).map(\.id))
        _ = try await hive.agent("iris").call(AckTurnCommand(ids: Array(acked)))

        // A newer build (this one with bytes after its end: another hash, the same program).
        let newer = hive.dir.appending(path: "hive-newer")
        var bytes = try Data(contentsOf: LiveHive.binary)
        bytes.append(Data("\n# a newer build\n".utf8))
        try bytes.write(to: newer)
        _ = chmod(newer.path, 0o755)
        let up = try hive.cli(["install", "--prefix", prefix.path, "--binary", newer.path])
        #expect(up.status == 0, "\(up.out)\(up.err)")
        #expect(up.out.contains("(was /usr/local/lib/hyperhive/\(oldTarget))"), "\(up.out)")
        let newTarget = (try FileManager.default.destinationOfSymbolicLink(atPath: first.executable.path) as NSString).lastPathComponent
        #expect(newTarget != oldTarget)
        #expect(FileManager.default.fileExists(atPath: prefix.appending(path: "usr/local/lib/hyperhive/\(oldTarget)").path), "the old binary is kept for a rollback")
        // The backup taken first, while core ran, holds every message sent so far.
        let backup = try #require(up.out.split(separator: "\n").first { $0.hasPrefix("backup ") }?.split(separator: " ")[1])
        let restored = hive.dir.appending(path: "restored")
        let put = try hive.cli(["restore", prefix.appending(path: String(backup.dropFirst())).path, "--root", restored.path])
        #expect(put.status == 0, "\(put.err)")
        let copy = try Broker(path: restored.appending(path: "broker.sqlite").path)
        #expect(try copy.messages(after: 0, limit: 100).filter { $0.to == "iris" }.count == 20)

        // What `systemctl try-restart hyperhive` does: SIGTERM, then ExecStart again (now the new binary).
        #expect(await hive.terminate() == 0)
        let second = try Self.execStart(unit: unit, environmentFile: env, prefix: prefix)
        try await hive.startCore(second.args, executable: second.executable)
        let running = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(hive.process!.processIdentifier)/exe")
        #expect(running.hasSuffix("/" + newTarget), "core runs the new binary: \(running)")
        // Iris's harness, restarted with core, starts as every harness does: what it held goes back.
        _ = try await hive.agent("iris").call(RequeueInflightCommand())
        var back: [MessageView] = []
        while true {
            let got = try await hive.agent("iris").call(RecvCommand(waitSeconds: 0, max: 32)).messages
            if got.isEmpty { break }
            back += got
        }
        #expect(back.count == 15, "10 never handed out + 5 in flight: \(back.map(\.body))")
        #expect(Set(back.map(\.id)).isDisjoint(with: acked), "an acked message never comes back")
        #expect(Set(back.filter(\.redelivered).map(\.id)) == inFlight, "the in-flight ones, flagged redelivered")
        _ = try await hive.agent("iris").call(AckTurnCommand(ids: back.map(\.id)))

        // Rollback: the link goes back, and the old binary starts on the same data.
        let rolled = try hive.cli(["install", "--prefix", prefix.path, "--rollback"])
        #expect(rolled.status == 0 && rolled.out.contains(oldTarget), "\(rolled.out)\(rolled.err)")
        #expect(await hive.terminate() == 0)
        let third = try Self.execStart(unit: unit, environmentFile: env, prefix: prefix)
        try await hive.startCore(third.args, executable: third.executable)
        let list = try await hive.admin().call(ListCommand())
        #expect(list.agents.contains { $0.name == "iris" })
        #expect(await hive.terminate() == 0)
    }
}
