/// The model a Messages API request asks for, read from its JSON body without parsing the rest.
///
/// Hand-written rather than `JSONSerialization`: a request body carries the whole conversation (a
/// megabyte at 200k tokens of context), and the gateway reads it on the path to the first token. This
/// walks the top-level object once, skipping every value but `model`'s (measured: `hive-bench
/// --gateway-latency`). It refuses what a JSON parser upstream could read differently from it: a
/// top-level key written with escapes (`"mod\u0065l"`), `model` given twice, a model name with escapes,
/// anything but whitespace after the object, scalars that are not JSON's (comments, `NaN`), and the
/// top-level fields that make the API itself reach out (`mcp_servers`, `container`).
enum ModelRequest {
    enum Problem: Error, Equatable, CustomStringConvertible {
        case notAnObject, escapedKey, modelTwice, modelNotAString, truncated, trailing, notJSON, reachesOut(String)

        var description: String {
            switch self {
            case .notAnObject: "the body is not a JSON object"
            case .escapedKey: "a top-level key is written with escapes"
            case .modelTwice: "'model' is given more than once"
            case .modelNotAString: "'model' is not a plain string"
            case .truncated: "the JSON body ends early"
            case .trailing: "there is more after the JSON object"
            case .notJSON: "the body is not plain JSON (a comment, or a value JSON has not)"
            case .reachesOut(let key): "'\(key)' would have the API reach out on the agent's behalf; the gateway does not pass it"
            }
        }
    }

    /// Top-level fields with which the API would connect somewhere for the agent (remote MCP servers, a
    /// code-execution container): a way out around the allow-list.
    static let reachingOut = ["mcp_servers", "container"]
    /// The bytes a JSON number, `true`, `false` or `null` is made of.
    static let scalar = Set(Array("0123456789+-.eEtruefalsn".utf8))

    /// The top-level `model`, nil when there is none.
    static func model(in body: some Collection<UInt8>) throws(Problem) -> String? {
        let b = Array(body)
        var i = 0
        var model: String?
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 }
        func ws() { while i < b.count, isSpace(b[i]) { i += 1 } }
        /// Everything that ends a top-level object: only whitespace may follow it.
        func end() throws(Problem) -> String? {
            i += 1
            ws()
            guard i == b.count else { throw .trailing }
            return model
        }
        /// Skips a string starting at its opening quote; returns its raw bytes and whether it had escapes.
        func string() throws(Problem) -> (ArraySlice<UInt8>, Bool) {
            let start = i + 1
            var escaped = false
            i += 1
            while i < b.count {
                switch b[i] {
                case 0x5C: escaped = true; i += 2
                case 0x22: i += 1; return (b[start..<(i - 1)], escaped)
                default: i += 1
                }
            }
            throw .truncated
        }
        /// Skips one value (object, array, string or scalar).
        func value() throws(Problem) {
            ws()
            guard i < b.count else { throw .truncated }
            switch b[i] {
            case 0x22: _ = try string()
            case 0x7B, 0x5B:
                var depth = 0
                while i < b.count {
                    switch b[i] {
                    case 0x22: _ = try string(); continue
                    case 0x7B, 0x5B: depth += 1
                    case 0x7D, 0x5D:
                        depth -= 1
                        if depth == 0 { i += 1; return }
                    case 0x2C, 0x3A: break
                    default: guard isSpace(b[i]) || scalar.contains(b[i]) else { throw .notJSON }
                    }
                    i += 1
                }
                throw .truncated
            default:
                // Numbers, true, false, null: nothing else (no comments, NaN or Infinity).
                let start = i
                while i < b.count, b[i] != 0x2C, b[i] != 0x7D, b[i] != 0x5D, !isSpace(b[i]) {
                    guard scalar.contains(b[i]) else { throw .notJSON }
                    i += 1
                }
                if i == start { throw .notJSON }
            }
        }
        ws()
        guard i < b.count, b[i] == 0x7B else { throw .notAnObject }
        i += 1
        var seen = false
        while true {
            ws()
            guard i < b.count else { throw .truncated }
            if b[i] == 0x7D { return try end() }
            guard b[i] == 0x22 else { throw .notAnObject }
            let (key, keyEscaped) = try string()
            if keyEscaped { throw .escapedKey }
            for refused in reachingOut where key.elementsEqual(refused.utf8) { throw .reachesOut(refused) }
            ws()
            guard i < b.count, b[i] == 0x3A else { throw .notAnObject }
            i += 1
            if key.elementsEqual("model".utf8) {
                if seen { throw .modelTwice }
                seen = true
                ws()
                guard i < b.count, b[i] == 0x22 else { throw .modelNotAString }
                let (name, nameEscaped) = try string()
                if nameEscaped { throw .modelNotAString }
                model = String(decoding: name, as: UTF8.self)
            } else {
                try value()
            }
            ws()
            guard i < b.count else { throw .truncated }
            if b[i] == 0x2C { i += 1; continue }
            guard b[i] == 0x7D else { throw .notAnObject }
            return try end()
        }
    }
}
