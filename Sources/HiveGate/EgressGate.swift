import Foundation
import HiveWire
#if canImport(Glibc)
import Glibc
#endif

/// Resolves names for the gateway: the agent never resolves anything itself (its cage has no DNS).
/// Blocking: the gateway calls it on the connection's own thread.
public protocol NameResolver: Sendable {
    func resolve(_ host: String) throws -> [IPAddress]
}

/// The host's resolver (`getaddrinfo`).
public struct SystemResolver: NameResolver {
    public init() {}

    public func resolve(_ host: String) throws -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &list)
        guard rc == 0 else { throw ResolveError(host: host, reason: String(cString: gai_strerror(rc))) }
        defer { freeaddrinfo(list) }
        var found = Set<IPAddress>()
        var next = list
        while let ai = next {
            if ai.pointee.ai_family == AF_INET, let sa = ai.pointee.ai_addr {
                sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                    if let a = IPAddress(bytes: withUnsafeBytes(of: v4.pointee.sin_addr) { Array($0) }) { found.insert(a) }
                }
            } else if ai.pointee.ai_family == AF_INET6, let sa = ai.pointee.ai_addr {
                sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                    if let a = IPAddress(bytes: withUnsafeBytes(of: v6.pointee.sin6_addr) { Array($0) }) { found.insert(a) }
                }
            }
            next = ai.pointee.ai_next
        }
        return found.sorted { $0.description < $1.description }
    }
}

public struct ResolveError: Error, CustomStringConvertible {
    public let host: String
    public let reason: String
    public init(host: String, reason: String) { self.host = host; self.reason = reason }
    public var description: String { "\(host) does not resolve: \(reason)" }
}

/// One agent's egress decision for one request: the policy on the name, then the gateway's own
/// resolution, then the policy on every address. What it returns is what the gateway dials (and logs).
public struct EgressGate: Sendable {
    public enum Decision: Sendable, Equatable {
        /// Dial one of these addresses on `port`.
        case dial([IPAddress], port: Int)
        /// Refuse, with the sentence the agent's client is shown (a 403 body) and the log keeps.
        case refuse(String)
    }

    public let policy: EgressPolicy
    public let resolver: any NameResolver
    /// Internal endpoints (`address:port`) the hive itself lets through, such as a stand-in on loopback in
    /// tests: the operator's setting, never an agent's.
    public let internalExceptions: Set<String>

    public init(policy: EgressPolicy, resolver: any NameResolver = SystemResolver(), internalExceptions: Set<String> = []) {
        self.policy = policy
        self.resolver = resolver
        self.internalExceptions = internalExceptions
    }

    public func decide(host: String, port: Int, plain: Bool) -> Decision {
        if let refusal = policy.refusal(host: host, port: port, plain: plain) { return .refuse(refusal) }
        if let literal = IPAddress(EgressPolicy.normalised(host) ?? host) { return .dial([literal], port: port) } // listed as written
        guard let addresses = try? resolver.resolve(EgressPolicy.normalised(host) ?? host), !addresses.isEmpty else {
            return .refuse("\(host) does not resolve")
        }
        // The hive's own exceptions are dialled as they are; every other address must be public.
        let checked = addresses.filter { !internalExceptions.contains("\($0):\(port)") }
        if !checked.isEmpty, let refusal = EgressPolicy.refusal(resolved: checked) { return .refuse("\(host): \(refusal)") }
        return .dial(addresses, port: port)
    }
}

/// How much one agent may move through the gateway: bytes per minute (a token bucket that refills
/// evenly) and connections open at once. A value; the gateway asks it before each connection and each
/// chunk, and waits as long as it says.
public struct EgressBudget: Sendable, Equatable {
    public let bytesPerMinute: Double
    public let maxConnections: Int
    public private(set) var open = 0
    /// Bytes that may go now; refills at `bytesPerMinute / 60` per second up to one minute's worth.
    public private(set) var allowance: Double
    private var refilledAt: Double

    public init(bytesPerMinute: Double, maxConnections: Int, now: Double) {
        self.bytesPerMinute = bytesPerMinute
        self.maxConnections = maxConnections
        allowance = bytesPerMinute
        refilledAt = now
    }

    /// A new connection, or nil when as many are open as allowed (with the sentence for the refusal).
    public mutating func connect() -> String? {
        guard open < maxConnections else { return "\(maxConnections) connections are open already; close one first" }
        open += 1
        return nil
    }

    public mutating func disconnect() { open = max(0, open - 1) }

    /// Takes `bytes` from the allowance; returns how many seconds to wait before sending them (0: now).
    public mutating func take(_ bytes: Int, now: Double) -> Double {
        allowance = min(bytesPerMinute, allowance + max(0, now - refilledAt) * bytesPerMinute / 60)
        refilledAt = max(refilledAt, now)
        allowance -= Double(bytes)
        return allowance >= 0 ? 0 : -allowance * 60 / bytesPerMinute
    }
}
