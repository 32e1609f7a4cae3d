import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive `flock` on a file, held for the life of the process, that records who holds it.
///
/// The kernel drops the lock when the holder dies, even by `kill -9`, so a crashed core never
/// leaves a stale lock behind. (Written by hand: flock is one syscall and no package wraps it.)
final class ExclusiveLock: Sendable {
    private let fd: Int32

    /// Takes the lock or throws a message naming the current holder, read from the file.
    init(path: URL, what: String, holder: String) throws(CoreError) {
        let fd = open(path.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CoreError("cannot open \(path.path): \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let other = (try? String(contentsOf: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(fd)
            throw CoreError("\(what) is already owned by a running hive core (\(other.isEmpty ? "holder unknown" : other)); stop it first or pick another directory")
        }
        let text = holder + "\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
        self.fd = fd
    }

    deinit { close(fd) }
}
