import Foundation
import HiveHost
import HiveWire
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A unix socket whose every connection is carried to one fixed TCP endpoint chosen by the hive (a
/// gated cage's way to the forge): nothing is parsed, the endpoint cannot be steered, each connection
/// is logged with what it moved.
public final class SocketRelay: Sendable {
    public static let maxConnections = 32
    private let listener: Listener
    private let address: IPAddress
    private let port: Int
    private let record: @Sendable (_ allowed: Bool, _ note: String, _ out: Int, _ in: Int) -> Void

    public init(path: String, owner: (uid_t, gid_t)?, to address: IPAddress, port: Int,
                record: @escaping @Sendable (_ allowed: Bool, _ note: String, _ out: Int, _ in: Int) -> Void) throws {
        listener = try Listener(unixPath: path, mode: 0o660, owner: owner, cap: Self.maxConnections)
        self.address = address
        self.port = port
        self.record = record
    }

    public func start() {
        listener.start { [self] connection in
            defer { close(connection) }
            // The cage's forwarder hands its connection over (``HandOff``); bytes sent already go first.
            ConnectProxy.setTimeout(connection, ConnectProxy.handshakeTimeout)
            guard let (client, early, owned) = HandOff.receive(connection) else { return }
            defer { if owned { close(client) } }
            guard let upstream = ConnectProxy.dial([address], port: port) else {
                record(true, "\(address):\(port) did not answer", 0, 0)
                return
            }
            defer { close(upstream) }
            guard early.isEmpty || UnixSocket.writeAll(upstream, Data(early)) else { return }
            ConnectProxy.setTimeout(client, 60)
            ConnectProxy.setTimeout(upstream, 60)
            let (moved, _) = Tunnel.relay(client, upstream, idle: ConnectProxy.idleTimeout)
            record(true, "closed", moved.0 + early.count, moved.1)
        }
    }

    public func stop() { listener.stop() }
}
