import Foundation
import HiveWire

/// Reads what a model answer used from the bytes the gateway passes back, as they pass: a streamed
/// answer's `message_start` (input and cache tokens) and its last `message_delta` (output tokens, and
/// the final counts where the API sends them there), or a plain JSON answer's `usage`. A value, fed
/// chunk by chunk; only the few lines that carry usage are parsed.
struct ModelMeter {
    private(set) var usage = TokenCount()
    private(set) var model: String?
    /// Whether any usage was read (an error answer has none).
    private(set) var metered = false
    private let streamed: Bool
    private var line: [UInt8] = []
    private var lineTooLong = false
    /// The longest line (or plain answer) looked at: usage lines are a few hundred bytes.
    static let maxLine = 1 << 20

    init(contentType: String?) {
        streamed = contentType?.lowercased().hasPrefix("text/event-stream") == true
    }

    mutating func feed(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            if streamed && byte == 0x0A {
                if !lineTooLong { take(line) }
                line.removeAll(keepingCapacity: true)
                lineTooLong = false
            } else if line.count < Self.maxLine {
                line.append(byte)
            } else {
                lineTooLong = true
            }
        }
    }

    /// The answer ended: a plain JSON answer is read now.
    mutating func finish() {
        if !streamed && !lineTooLong, let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] {
            apply(object["usage"] as? [String: Any], model: object["model"] as? String)
        } else if streamed, !lineTooLong {
            take(line)
        }
        line = []
    }

    private mutating func take(_ line: [UInt8]) {
        // "data: {...}" lines of the two event types that carry usage; the rest are skipped unparsed.
        guard line.count > 6, line.starts(with: Array("data:".utf8)) else { return }
        let text = String(decoding: line, as: UTF8.self)
        guard text.contains("\"message_start\"") || text.contains("\"message_delta\"") else { return }
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.dropFirst(5))) as? [String: Any] else { return }
        switch object["type"] as? String {
        case "message_start":
            let message = object["message"] as? [String: Any]
            apply(message?["usage"] as? [String: Any], model: message?["model"] as? String)
        case "message_delta":
            apply(object["usage"] as? [String: Any], model: nil)
        default: break
        }
    }

    /// Counts are cumulative in the API's events: the latest non-zero value of each stands.
    private mutating func apply(_ u: [String: Any]?, model: String?) {
        if let model { self.model = model }
        guard let u else { return }
        metered = true
        func n(_ key: String, in o: [String: Any]? = nil) -> Int? { ((o ?? u)[key] as? NSNumber)?.intValue }
        if let v = n("input_tokens"), v > 0 { usage.input = v }
        if let v = n("output_tokens"), v > 0 { usage.output = v }
        if let v = n("cache_read_input_tokens"), v > 0 { usage.cacheRead = v }
        if let split = u["cache_creation"] as? [String: Any] {
            let m5 = n("ephemeral_5m_input_tokens", in: split) ?? 0, h1 = n("ephemeral_1h_input_tokens", in: split) ?? 0
            if m5 + h1 > 0 { usage.cacheWriteShort = m5; usage.cacheWriteLong = h1 }
        } else if let v = n("cache_creation_input_tokens"), v > 0 {
            // A total without the split (`message_delta` gives only the total): what the split already put
            // in the 1-hour cache stays there, the rest is the API's default 5-minute lifetime.
            usage.cacheWriteShort = max(0, v - usage.cacheWriteLong)
        }
    }
}
