/// Numbers that both sides of a socket agree on.
public enum WireLimits {
    /// The protocol version every response carries. Bump it when a response changes shape.
    public static let protocolVersion = 1
    /// Largest message body in bytes (UTF-8). Long content travels as a path, not a body.
    public static let maxBodyBytes = 4096
    /// Largest request line a socket accepts, in bytes. Generous next to the body cap because JSON
    /// escaping can grow a 4 KiB body several times over.
    public static let maxLineBytes = 64 * 1024
    /// Most messages one `recv` may return.
    public static let maxRecvBatch = 32
    /// Longest a `recv` may park, in seconds.
    public static let maxRecvWaitSeconds = 180.0
    /// Most rows `recent` and `inbox` return.
    public static let maxListLimit = 500
    /// Most ids one `ack_turn` may name.
    public static let maxAckIDs = 1024
}
