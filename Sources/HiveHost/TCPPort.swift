import Foundation
import HiveWire
#if canImport(Glibc)
import Glibc
#endif

/// Loopback TCP ports for the hive's HTTP servers (forge, dashboard) and their tests.
public enum TCPPort {
    /// Binds `host:port` once (port 0: any free port) to see that it can, and returns the port; nil when
    /// the port is taken or the address is not local.
    public static func bindable(_ host: String, port: Int) -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr(host == "localhost" ? "127.0.0.1" : host)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        return ok ? Int(UInt16(bigEndian: addr.sin_port)) : nil
    }

    /// A free port on 127.0.0.1 (free when asked; a test or bench binds it right after).
    public static func free() -> Int { bindable("127.0.0.1", port: 0) ?? 0 }
}
