import Foundation
import HiveClient
import HiveWire

/// The web process's only way into the hive: requests on `<run-dir>/web.sock`. A fresh connection per
/// request (a unix-socket connect costs microseconds), so a slow long-poll never holds up an action.
public struct CoreLink: Sendable {
    public let socket: String
    public init(socket: String) { self.socket = socket }

    public func call<C: HiveCommand>(_ command: C) async throws -> C.Reply {
        try await HiveConnection(path: socket).call(command)
    }

    /// Sends one request line as it is and returns core's response line (core's table decides what is allowed).
    public func raw(_ line: Data) async throws -> Data {
        try await HiveConnection(path: socket).roundTrip(line)
    }
}
