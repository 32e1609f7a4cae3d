import Foundation

/// The JSON conventions of every hive socket: snake_case keys, one object per line.
public enum WireCoding {
    /// An encoder for one wire line (no trailing newline; callers add it).
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }

    /// A decoder for one wire line. Unknown fields are ignored by construction.
    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }

    /// Turns a decoding failure into a sentence a person can act on, naming the field in snake_case.
    public static func explain(_ error: any Error) -> String {
        if let refusal = error as? RequestError { return refusal.message }
        guard let error = error as? DecodingError else { return "invalid request: \(error)" }
        func path(_ p: [any CodingKey], _ last: (any CodingKey)? = nil) -> String {
            let keys = (p + (last.map { [$0] } ?? [])).map { key -> String in
                if let i = key.intValue { return "[\(i)]" }
                return snake(key.stringValue)
            }
            return keys.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let ctx):
            return "missing field '\(path(ctx.codingPath, key))'"
        case .typeMismatch(let type, let ctx):
            return "field '\(path(ctx.codingPath))' has the wrong type: expected \(describe(type))"
        case .valueNotFound(let type, let ctx):
            return "field '\(path(ctx.codingPath))' is null: expected \(describe(type))"
        case .dataCorrupted(let ctx):
            if ctx.codingPath.isEmpty { return "request is not a JSON object on one line" }
            // Number fields fed a fraction or an out-of-range value land here too.
            return "field '\(path(ctx.codingPath))' is invalid: \(ctx.debugDescription)"
        @unknown default:
            return "invalid request"
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is Int.Type, is Int64.Type: return "an integer"
        case is Double.Type: return "a number"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return name
        }
    }

    /// `inReplyTo` → `in_reply_to`, for error messages that quote the wire's own field names.
    static func snake(_ key: String) -> String {
        var out = ""
        for ch in key {
            if ch.isUppercase { out += "_" + ch.lowercased() } else { out.append(ch) }
        }
        return out
    }
}
