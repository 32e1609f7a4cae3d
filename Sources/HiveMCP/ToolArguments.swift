import MCP

/// A tool call refused before it reached the hive: a clear sentence for the agent.
struct ToolError: Error, CustomStringConvertible {
    let description: String
}

/// A tool call's arguments, read with the types the schema promised (and a sentence when they are not).
struct ToolArguments: Sendable {
    let raw: [String: Value]
    init(_ raw: [String: Value]) { self.raw = raw }

    func string(_ key: String) throws -> String {
        guard let v = raw[key] else { throw ToolError(description: "missing argument '\(key)'") }
        guard let s = v.stringValue else { throw ToolError(description: "argument '\(key)' must be a string") }
        return s
    }

    func int(_ key: String, required: Bool) throws -> Int? {
        guard let v = raw[key], !v.isNull else {
            if required { throw ToolError(description: "missing argument '\(key)'") }
            return nil
        }
        if let i = v.intValue { return i }
        if let d = v.doubleValue, d == d.rounded(), abs(d) < 9e15 { return Int(d) }
        throw ToolError(description: "argument '\(key)' must be a whole number")
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = raw[key], !v.isNull else { return nil }
        guard let b = v.boolValue else { throw ToolError(description: "argument '\(key)' must be true or false") }
        return b
    }

    func strings(_ key: String) throws -> [String]? {
        guard let v = raw[key], !v.isNull else { return nil }
        // A lone string is taken as a list of one: models often pass a single choice that way.
        if let s = v.stringValue { return [s] }
        guard let list = v.arrayValue, let texts = Optional(list.compactMap(\.stringValue)), texts.count == list.count else {
            throw ToolError(description: "argument '\(key)' must be a list of strings")
        }
        return texts
    }

    func number(_ key: String) throws -> Double? {
        guard let v = raw[key], !v.isNull else { return nil }
        if let d = v.doubleValue { return d }
        if let i = v.intValue { return Double(i) }
        throw ToolError(description: "argument '\(key)' must be a number")
    }
}
