import Foundation
import HiveHost
import HiveWire
#if canImport(Glibc)
import Glibc
#endif

/// Makes sure what a cage runs is reachable by the agents' uids, without loosening anything of the
/// operator's: bubblewrap runs as the agent's uid, so every bind source must be readable by it.
///
/// A file that is not (the `hive` binary of a `swift run` under `/root`, a claude installed in the
/// operator's home) is copied into `<root>/bin/`, root's and 0755, once per version of the file (its
/// size, mtime and inode name the copy; a content hash of a 400 MB CLI on every start costs a second). The hive root itself must be reachable: core refuses to start when it
/// is not, with the reason and the fix.
public enum AgentBinaries {
    /// Whether a process of another uid can reach `path`: every directory above it searchable by others,
    /// the file itself readable (and executable, for a program) by others.
    static func reachableByOthers(_ path: String, executable: Bool = true) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0 else { return false }
        let need: mode_t = executable ? (S_IROTH | S_IXOTH) : S_IROTH
        guard st.st_mode & need == need else { return false }
        return blockingDirectory(above: path) == nil
    }

    /// The first directory above `path` that others cannot search, if any. Directories that do not exist
    /// yet are skipped: core makes them 0755.
    static func blockingDirectory(above path: String) -> String? {
        var dir = URL(filePath: path).deletingLastPathComponent()
        while true {
            var st = stat()
            if stat(dir.path, &st) == 0 {
                if st.st_mode & S_IXOTH == 0 { return dir.path }
            } else if errno != ENOENT {
                return dir.path
            }
            if dir.path == "/" { return nil }
            dir.deleteLastPathComponent()
        }
    }

    /// Refuses a root the agents' uids could not reach (bubblewrap binds their directories from it).
    static func checkRoot(_ layout: HiveLayout) throws {
        let root = layout.root.resolvingSymlinksInPath().path
        if let blocked = blockingDirectory(above: root + "/x") {
            throw CoreError("""
                the hive root \(root) is not reachable by the agents' uids: \(blocked) is closed to other users \
                (bubblewrap binds each agent's directories from the root as that agent). Use a root outside it, \
                e.g. --root /var/lib/hyperhive (the default when run as root); do not open up \(blocked)
                """)
        }
    }

    /// `path` itself when others can run it, else a copy under `<root>/bin` (made now if missing). Plain
    /// path work is safe here: `<root>` and `<root>/bin` are root's and no agent can write either, and
    /// `path` is the operator's (core's environment), never an agent's.
    public static func reachable(_ path: String, in layout: HiveLayout) throws -> String {
        if reachableByOthers(path) { return path }
        var st = stat()
        guard stat(path, &st) == 0 else { throw CoreError("cannot stat \(path): \(String(cString: strerror(errno)))") }
        let bin = layout.root.appending(path: "bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        _ = chmod(bin.path, 0o755)
        let name = URL(filePath: path).lastPathComponent
        let copy = bin.appending(path: "\(name)-\(st.st_size)-\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)-\(st.st_ino)")
        if FileManager.default.isExecutableFile(atPath: copy.path) { return copy.path }
        let temp = bin.appending(path: ".\(name).\(UUID().uuidString.prefix(8))")
        try FileManager.default.copyItem(atPath: path, toPath: temp.path)
        _ = chmod(temp.path, 0o755)
        guard rename(temp.path, copy.path) == 0 else {
            try? FileManager.default.removeItem(at: temp)
            throw CoreError("cannot place \(copy.path): \(String(cString: strerror(errno)))")
        }
        // Older copies are left where they are: a cage starting right now may be binding one.
        return copy.path
    }
}
