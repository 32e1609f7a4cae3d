import Foundation
import HiveHost
#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PostgreSQL cluster for one test or benchmark (never linked into `hive`): `initdb` and `pg_ctl` from the Debian package (installed
/// by `.ci/run`; the tests install nothing), in a temp dir it owns, listening on loopback only. As root the
/// server runs as the `postgres` user (it refuses root). Stopped (fast) when the value goes away.
public final class PostgresCluster: @unchecked Sendable {
    /// The server binaries, if PostgreSQL is installed.
    public static let binDir: URL? = {
        let base = URL(filePath: "/usr/lib/postgresql")
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: base.path)) ?? []).sorted { (Int($0) ?? 0) > (Int($1) ?? 0) }
        return versions.map { base.appending(path: "\($0)/bin") }.first { FileManager.default.isExecutableFile(atPath: $0.appending(path: "initdb").path) }
    }()
    public static var available: Bool { binDir != nil }

    public let dir: URL
    public let port: Int
    public let user = "hive"
    var data: URL { dir.appending(path: "data") }

    public init() throws {
        guard let bin = Self.binDir else { throw ClusterError("PostgreSQL is not installed (apt-get install postgresql)") }
        var template = Array("/tmp/hpg-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw ClusterError("mkdtemp failed") }
        dir = URL(filePath: String(cString: made))
        port = Self.freePort()
        if getuid() == 0 {
            guard let pw = getpwnam("postgres") else { throw ClusterError("no postgres user") }
            _ = chown(dir.path, pw.pointee.pw_uid, pw.pointee.pw_gid)
        }
        try run(bin.appending(path: "initdb").path, ["-D", data.path, "-U", user, "-A", "trust", "--no-sync", "-E", "UTF8"])
        try start()
    }

    deinit {
        _ = try? run(Self.binDir!.appending(path: "pg_ctl").path, ["-D", data.path, "-m", "immediate", "-w", "-t", "20", "stop"])
        try? FileManager.default.removeItem(at: dir)
    }

    /// Starts the server (again), waiting until it accepts connections.
    public func start() throws {
        try run(Self.binDir!.appending(path: "pg_ctl").path, [
            "-D", data.path, "-l", dir.appending(path: "server.log").path, "-w", "-t", "30",
            "-o", "-p \(port) -k \(dir.path) -c listen_addresses=127.0.0.1 -c max_connections=100", "start",
        ])
    }

    /// Makes an empty database `name` (letters, digits and underscores).
    public func createDatabase(_ name: String) throws {
        precondition(name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") })
        try run(Self.binDir!.appending(path: "psql").path, ["-h", "127.0.0.1", "-p", "\(port)", "-U", user, "-d", "postgres", "-v", "ON_ERROR_STOP=1",
                                                           "-c", "CREATE DATABASE \(name)"])
    }

    /// Stops the server (`fast`: connections are cut, as when the database host restarts).
    public func stop() throws {
        try run(Self.binDir!.appending(path: "pg_ctl").path, ["-D", data.path, "-m", "fast", "-w", "-t", "30", "stop"])
    }

    /// Runs a server tool, as `postgres` when we are root; throws with its output when it fails.
    @discardableResult
    func run(_ tool: String, _ args: [String]) throws -> String {
        let p = Process()
        if getuid() == 0 {
            p.executableURL = URL(filePath: "/usr/sbin/runuser")
            p.arguments = ["-u", "postgres", "--", tool] + args
        } else {
            p.executableURL = URL(filePath: tool)
            p.arguments = args
        }
        // Into a file, not a pipe: the server pg_ctl starts keeps every descriptor it inherits, so a pipe's
        // end would stay open for as long as the server runs.
        let output = dir.appending(path: "tool-\(UUID().uuidString.prefix(8)).out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        defer { try? handle.close(); try? FileManager.default.removeItem(at: output) }
        p.standardOutput = handle
        p.standardError = handle
        p.currentDirectoryURL = dir
        try p.run()
        let status = p.waitUntilGone() ?? -1 // not waitUntilExit: it can miss an exit off the main thread
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        guard status == 0 else { throw ClusterError("\((tool as NSString).lastPathComponent) failed (\(status)): \(text.suffix(800))") }
        return text
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

public struct ClusterError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
