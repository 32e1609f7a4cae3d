import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 address, parsed with `inet_pton` (no shorthand such as `127.1` or octal, which
/// resolvers accept and allow-lists must not): an allow-list's literals and the gateway's checks after
/// resolving. (Its socket addresses are HiveGate's.)
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 (IPv6), network order.
    public let bytes: [UInt8]

    public init?(_ text: String) {
        var v4 = in_addr()
        if text.withCString({ inet_pton(AF_INET, $0, &v4) }) == 1 {
            bytes = withUnsafeBytes(of: v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        if text.withCString({ inet_pton(AF_INET6, $0, &v6) }) == 1 {
            bytes = withUnsafeBytes(of: v6) { Array($0) }
            return
        }
        return nil
    }

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    public var isV4: Bool { bytes.count == 4 }

    /// The IPv4 address inside an IPv4-mapped IPv6 one (`::ffff:a.b.c.d`), which reaches the same host.
    public var mappedV4: IPAddress? {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF else { return nil }
        return IPAddress(bytes: Array(bytes[12..<16]))
    }

    /// Not on the public internet: this host (loopback, unspecified), link-local, private and shared
    /// (CGNAT) ranges, unique-local IPv6, multicast and broadcast, and the ranges reserved for
    /// documentation and benchmarks. The gateway never dials these for a name.
    public var isInternal: Bool {
        if let v4 = mappedV4 { return v4.isInternal }
        if isV4 {
            let (a, b) = (bytes[0], bytes[1])
            return a == 0 || a == 10 || a == 127 || (a == 100 && b & 0xC0 == 64) || (a == 169 && b == 254)
                || (a == 172 && b & 0xF0 == 16) || (a == 192 && b == 168) || (a == 192 && b == 0 && bytes[2] == 0)
                || (a == 198 && b & 0xFE == 18) || a >= 224
        }
        let zeroPrefix = bytes[0..<15].allSatisfy { $0 == 0 }
        if zeroPrefix && (bytes[15] == 0 || bytes[15] == 1) { return true } // :: and ::1
        if bytes[0] & 0xFE == 0xFC { return true }                          // fc00::/7 unique local
        if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80 { return true }      // fe80::/10 link local
        if bytes[0] == 0xFF { return true }                                 // multicast
        if bytes[0] == 0x00 && bytes[1] == 0x64 && bytes[2] == 0xFF && bytes[3] == 0x9B { return true } // 64:ff9b:: NAT64 (reaches v4 of any kind)
        if bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x0D && bytes[3] == 0xB8 { return true } // 2001:db8:: documentation
        return false
    }

    public var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let ok = bytes.withUnsafeBytes { raw in
            inet_ntop(isV4 ? AF_INET : AF_INET6, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        }
        guard ok, let end = buffer.firstIndex(of: 0) else { return "?" }
        return String(decoding: buffer[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
