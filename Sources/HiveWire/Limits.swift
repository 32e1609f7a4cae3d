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

    /// `text` cut to fit a message body (at a character boundary, marked with "…"), `keeping` appended
    /// whole: for messages core composes from agents' text, which must never be too long to send.
    public static func fit(_ text: String, keeping tail: String = "") -> String {
        let limit = maxBodyBytes - tail.utf8.count
        guard text.utf8.count > limit else { return text + tail }
        var cut = String(decoding: text.utf8.prefix(limit - 3), as: UTF8.self)
        while cut.utf8.count > limit - 3 { cut.removeLast() }
        return cut + "…" + tail
    }
}
