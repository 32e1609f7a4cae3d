import Foundation
import HiveHost
#if canImport(Glibc)
import Glibc
#endif

/// Two connected sockets copied into each other until one side closes, on the calling thread.
/// Shared by the gateway's CONNECT relay (host side) and the forwarder in the cage.
enum Tunnel {
    enum End: Equatable {
        /// Side 0 or 1 closed (or reset).
        case closedBy(Int)
        /// Nothing moved either way for the idle time.
        case idle
        case failed(String)
    }

    /// Copies `a` ⇄ `b`; `pay(n)` runs before each chunk of `n` bytes is passed on (it may pause).
    /// Returns the bytes moved from `a` to `b` and from `b` to `a`, and how it ended.
    static func relay(_ a: Int32, _ b: Int32, idle: Double, pay: (Int) -> Void = { _ in }) -> ((Int, Int), End) {
        var fds = [pollfd(fd: a, events: Int16(POLLIN), revents: 0), pollfd(fd: b, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        var moved = [0, 0]
        while true {
            let ready = poll(&fds, 2, Int32(idle * 1000))
            if ready == 0 { return ((moved[0], moved[1]), .idle) }
            if ready < 0 {
                if errno == EINTR { continue }
                return ((moved[0], moved[1]), .failed("poll: \(String(cString: strerror(errno)))"))
            }
            for i in 0..<2 where fds[i].revents != 0 {
                let n = read(fds[i].fd, &buffer, buffer.count)
                if n <= 0 { return ((moved[0], moved[1]), .closedBy(i)) }
                pay(n)
                guard writeAll(fds[1 - i].fd, buffer, n) else {
                    return ((moved[0], moved[1]), .failed("the other side stopped taking bytes"))
                }
                moved[i] += n
            }
        }
    }

    /// Writes the first `count` bytes of `buffer` without copying them into a `Data` first (that extra
    /// copy per chunk showed in `hive-bench --gateway-mb`: 866 → 1051 MB/s, debug build, same run).
    static func writeAll(_ fd: Int32, _ buffer: [UInt8], _ count: Int) -> Bool {
        buffer.withUnsafeBytes { raw in
            var offset = 0
            while offset < count {
                let n = send(fd, raw.baseAddress! + offset, count - offset, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += n
            }
            return true
        }
    }
}
