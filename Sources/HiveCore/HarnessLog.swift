import Foundation
import HiveBroker
import HiveHost
import HiveWire
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// A cage's output (the harness's log and claude's stderr): `<root>/logs/<n>.log`, core's own file
/// outside every agent-writable directory. Opened without following links, as regular files only.
enum HarnessLog {
    static func url(_ layout: HiveLayout, _ name: AgentName) -> URL { layout.cageLog(name) }

    /// The log's write end for a new cage (created 0640 if missing), or nil when it is not a plain file.
    static func openForAppend(_ url: URL) -> FileHandle? {
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let fd = open(url.path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o640)
        guard fd >= 0 else { return nil }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { close(fd); return nil }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    /// A `logs` request: the agent must exist; 50 lines unless asked, at most 2000.
    static func reply(_ layout: HiveLayout, _ c: LogsCommand) throws -> LogsCommand.Reply {
        let name = try AgentName(c.name)
        let count = try Validate.count(c.lines, field: "lines", default: 50, cap: 2000)
        guard FileManager.default.fileExists(atPath: layout.agentDir(name).path) else { throw BrokerError.unknownAgent(name.rawValue) }
        return .init(name: name.rawValue, lines: tail(url(layout, name), lines: count))
    }

    /// The last `lines` lines (reading at most the last 256 KiB of the file).
    static func tail(_ url: URL, lines: Int) -> [String] {
        guard lines > 0 else { return [] }
        let fd = open(url.path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return [] }
        let size = UInt64(st.st_size)
        let window: UInt64 = 256 * 1024
        try? handle.seek(toOffset: size > window ? size - window : 0)
        let data = (try? handle.read(upToCount: Int(window))) ?? Data()
        var all = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if all.last == "" { all.removeLast() }
        if size > window, !all.isEmpty { all.removeFirst() } // a partial first line
        return Array(all.suffix(lines))
    }
}
