import CSplice
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A cage's TCP connection handed to core whole: the forwarder in the cage sends the accepted socket
/// itself over the gateway's unix socket (SCM_RIGHTS) instead of copying its bytes, so core relays
/// between the agent's connection and the destination directly: one hop less each way (the tunnel ran at
/// 52-74 % of direct loopback with the forwarder copying, `hive-bench --gateway-mb`).
///
/// The gateway takes what it is given warily: a descriptor must be a stream socket that is not
/// listening (never a file), anything else is closed; a connection that hands nothing over is served as
/// it is, its first byte kept.
enum HandOff {
    /// The forwarder's side: sends `connection` over `socket`. True when it went.
    static func send(_ connection: Int32, over socket: Int32) -> Bool { csplice_send_fd(socket, connection) == 0 }

    /// The gateway's side, on an accepted unix connection: the connection to serve (a handed-over socket,
    /// which the caller then owns, or the unix connection itself) and the bytes already read from it.
    /// Nil when nothing came (closed, timed out) or what came was not a stream socket.
    static func receive(_ connection: Int32) -> (fd: Int32, read: [UInt8], owned: Bool)? {
        var byte: UInt8 = 0
        var passed: Int32 = -1
        guard csplice_recv_fd(connection, &byte, &passed) == 1 else {
            if passed >= 0 { close(passed) }
            return nil
        }
        guard passed >= 0 else { return (connection, [byte], false) }
        guard csplice_is_stream_socket(passed) == 1 else {
            close(passed)
            return nil
        }
        return (passed, [], true)
    }
}
