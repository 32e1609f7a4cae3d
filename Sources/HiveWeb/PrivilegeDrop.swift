import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `hive web` never serves as root. Started as root, it runs itself again under `setpriv` as an
/// unprivileged uid and gid with no supplementary groups, so the whole new process (every thread, from
/// its first instruction) lacks root's permission bits. (A `setuid` call in a running Swift process does
/// not reach the main thread parked by the runtime: /proc showed it still root.) The operator password,
/// read while still root, travels through an inherited pipe, not the command line or environment.
public enum PrivilegeDrop {
    public static let passwordFDVariable = "HIVE_WEB_PASSWORD_FD"

    /// Replaces this process; returns only by throwing.
    public static func reexec(as uid: UInt32, arguments: [String], password: String?) throws -> Never {
        // Only what the unprivileged process needs: root's environment may hold credentials (a service's
        // settings file, an operator's shell), and another process of that uid could read them in /proc.
        var env = ProcessInfo.processInfo.environment.filter { key, _ in
            key == "PATH" || key == "TZ" || key == "TERM" || key == "LANG" || key.hasPrefix("LC_") || key == "HIVE_RUN_DIR"
        }
        if let password {
            var fds: [Int32] = [0, 0]
            guard pipe(&fds) == 0 else { throw WebError("cannot make a pipe: \(String(cString: strerror(errno)))") }
            let bytes = Array(password.utf8)
            guard bytes.count < 4096, write(fds[1], bytes, bytes.count) == bytes.count else { throw WebError("cannot hand over the password") }
            close(fds[1])
            env[passwordFDVariable] = String(fds[0]) // pipe() fds are inherited across exec
        }
        let exe = URL(filePath: "/proc/self/exe").resolvingSymlinksInPath().path
        let argv = ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "--", exe] + arguments
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        execve(argv[0], cArgs, cEnv)
        throw WebError("cannot run \(argv[0]): \(String(cString: strerror(errno)))")
    }

    /// The password a root parent handed over, if any.
    public static func inheritedPassword() -> String? {
        guard let raw = ProcessInfo.processInfo.environment[passwordFDVariable], let fd = Int32(raw), fd > 2 else { return nil }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = read(fd, &buf, buf.count)
        return n > 0 ? String(decoding: buf[..<n], as: UTF8.self) : nil
    }
}

public struct WebError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
