import Foundation
import HiveWire
#if canImport(Glibc)
import Glibc
#endif

/// An address as the gateway's sockets take it.
extension IPAddress {
    /// `body` with this address and `port` as a socket address (`sockaddr_in` or `sockaddr_in6`), for
    /// `connect` and `bind`.
    public func withSockaddr<T>(port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        if isV4 {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
            withUnsafeMutableBytes(of: &sa.sin_addr) { $0.copyBytes(from: bytes) }
            return withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        var sa = sockaddr_in6()
        sa.sin6_family = sa_family_t(AF_INET6)
        sa.sin6_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
        withUnsafeMutableBytes(of: &sa.sin6_addr) { $0.copyBytes(from: bytes) }
        return withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
    }

    /// The port a bound socket got (after binding port 0).
    public static func boundPort(_ fd: Int32) -> Int? {
        var sa = sockaddr_in6()
        var len = socklen_t(MemoryLayout<sockaddr_in6>.size)
        let ok = withUnsafeMutablePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return ok == 0 ? Int(UInt16(bigEndian: sa.sin6_port)) : nil // sin_port and sin6_port share their offset
    }

}
