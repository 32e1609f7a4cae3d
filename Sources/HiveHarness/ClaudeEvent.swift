import Foundation
import HiveWire

/// Token counts of one API call or a sum of them.
public struct Usage: Codable, Sendable, Equatable {
    public var input = 0
    public var output = 0
    public var cacheRead = 0
    public var cacheCreation = 0
    /// The part of `cacheCreation` written to the 1-hour cache (2x base input; the rest is 5-minute, 1.25x).
    public var cacheCreation1h = 0

    public init(input: Int = 0, output: Int = 0, cacheRead: Int = 0, cacheCreation: Int = 0, cacheCreation1h: Int = 0) {
        self.input = input; self.output = output; self.cacheRead = cacheRead; self.cacheCreation = cacheCreation
        self.cacheCreation1h = cacheCreation1h
    }

    /// The prompt size this call saw: uncached + cache-written + cache-read input.
    public var context: Int { input + cacheCreation + cacheRead }

    static func + (a: Usage, b: Usage) -> Usage {
        Usage(input: a.input + b.input, output: a.output + b.output, cacheRead: a.cacheRead + b.cacheRead,
              cacheCreation: a.cacheCreation + b.cacheCreation, cacheCreation1h: a.cacheCreation1h + b.cacheCreation1h)
    }

    /// The API's usage object (`input_tokens`, ..., `cache_creation.ephemeral_1h_input_tokens`).
    init(json: [String: Any]?) {
        func int(_ k: String) -> Int { (json?[k] as? NSNumber)?.intValue ?? 0 }
        let split = json?["cache_creation"] as? [String: Any]
        self.init(input: int("input_tokens"), output: int("output_tokens"), cacheRead: int("cache_read_input_tokens"),
                  cacheCreation: int("cache_creation_input_tokens"),
                  cacheCreation1h: (split?["ephemeral_1h_input_tokens"] as? NSNumber)?.intValue ?? 0)
    }

    /// The CLI's per-model usage object in `modelUsage` (camelCase keys).
    init(modelUsage json: [String: Any]) {
        func int(_ k: String) -> Int { (json[k] as? NSNumber)?.intValue ?? 0 }
        self.init(input: int("inputTokens"), output: int("outputTokens"), cacheRead: int("cacheReadInputTokens"),
                  cacheCreation: int("cacheCreationInputTokens"), cacheCreation1h: int("cacheCreationEphemeral1hInputTokens"))
    }
}

/// One model's share of a run, as the `result` line's `modelUsage` reports it. On `--continue` these are
/// the session's running totals, like `total_cost_usd`; the turn's share is the difference.
public struct ModelUsage: Codable, Sendable, Equatable {
    public var usage: Usage
    public var costUSD: Double
    public init(usage: Usage, costUSD: Double) { self.usage = usage; self.costUSD = costUSD }
}

/// The `result` line that ends a turn.
public struct ClaudeResult: Sendable, Equatable {
    public var isError: Bool
    public var subtype: String
    /// The prose result, or the joined `errors` of an error subtype.
    public var text: String
    public var totalCostUSD: Double?
    public var terminalReason: String?
    public var apiErrorStatus: Int?
    public var contextWindow: Int?
    public var numTurns: Int?
    /// This run's token totals (every API call of the run; not cumulative).
    public var usage: Usage?
    /// Per model, the session's running totals (cumulative on `--continue`).
    public var modelUsage: [String: ModelUsage] = [:]
    /// Tools the CLI refused to run in this turn, by name.
    public var permissionDenials: [String] = []
    public var apiErrorType: String?
}

/// One stdout line of `claude --output-format stream-json`, parsed tolerantly: anything unknown is kept
/// as `.other` and otherwise ignored, and a line that is not JSON becomes a `.note`.
public enum ClaudeEvent: Sendable, Equatable {
    case initialized(sessionID: String?, model: String?, version: String?)
    /// One content block of an assistant message (the CLI writes one line per block, each repeating the
    /// message's full usage).
    case assistant(messageID: String?, usage: Usage?, toolUses: [ToolUse], text: String?, error: String?)
    case toolResult(toolUseID: String?, isError: Bool)
    /// `windows`: each subscription window's use the event reported (`unifiedWindows`, or its own
    /// `utilization` for its `rateLimitType`).
    case rateLimit(status: String, resetsAt: Double?, kind: String?, windows: [String: WindowUse] = [:])
    case compactBoundary(preTokens: Int?, postTokens: Int?)
    case status(String)
    case apiRetry(attempt: Int?, errorStatus: Int?)
    case result(ClaudeResult)
    /// A JSON line of a type (or subtype) this harness does not know.
    case other(type: String)
    /// A line that is not a JSON object.
    case note(String)

    public struct ToolUse: Sendable, Equatable {
        public var id: String?
        public var name: String
    }

    /// Parses one stdout line into its events: normally one. A line the CLI broke by writing a
    /// `rate_limit_event` into the middle of it (a known bug) gives both: the spliced-in event, and the line
    /// it was cut into when that parses whole once the event is taken out. Nothing else is recovered from a
    /// broken line: an object nested in a tool's input must never pass for an event of the CLI.
    public static func events(in line: Data) -> [ClaudeEvent] {
        let first = parse(line)
        guard case .note = first else { return [first] }
        let bytes = [UInt8](line)
        let marker = Data(#"{"type":"rate_limit_event""#.utf8)
        var from = line.startIndex
        var tries = 0
        while tries < 8, let found = line.range(of: marker, in: from..<line.endIndex) {
            tries += 1
            from = found.lowerBound + 1
            let start = found.lowerBound - line.startIndex
            guard let end = JSONScan.objectEnd(bytes, from: start) else { continue }
            // The rest must be a whole line of its own: a truncated line or a tool's input never is.
            let outer = parse(Data(bytes[..<start] + bytes[end...]))
            if case .note = outer { continue }
            let inner = parse(Data(bytes[start..<end]))
            guard case .rateLimit = inner else { continue }
            return [inner, outer]
        }
        return [first]
    }

    /// Parses one line (without its newline).
    public static func parse(_ line: Data) -> ClaudeEvent {
        guard let obj = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any], let type = obj["type"] as? String else {
            return .note(String(decoding: line.prefix(2000), as: UTF8.self))
        }
        switch type {
        case "system":
            let subtype = obj["subtype"] as? String ?? ""
            switch subtype {
            case "init": return .initialized(sessionID: obj["session_id"] as? String, model: obj["model"] as? String,
                                             version: obj["claude_code_version"] as? String)
            case "compact_boundary":
                let meta = obj["compact_metadata"] as? [String: Any]
                return .compactBoundary(preTokens: (meta?["pre_tokens"] as? NSNumber)?.intValue,
                                        postTokens: (meta?["post_tokens"] as? NSNumber)?.intValue)
            case "status": return .status(obj["status"] as? String ?? "")
            case "api_retry":
                return .apiRetry(attempt: (obj["attempt"] as? NSNumber)?.intValue, errorStatus: (obj["error_status"] as? NSNumber)?.intValue)
            default: return .other(type: "system/\(subtype)")
            }
        case "assistant":
            let message = obj["message"] as? [String: Any]
            let blocks = message?["content"] as? [[String: Any]] ?? []
            let tools = blocks.filter { $0["type"] as? String == "tool_use" }.map {
                ToolUse(id: $0["id"] as? String, name: $0["name"] as? String ?? "?")
            }
            let text = blocks.compactMap { $0["type"] as? String == "text" ? $0["text"] as? String : nil }.joined(separator: "\n")
            return .assistant(messageID: message?["id"] as? String,
                              usage: (message?["usage"] as? [String: Any]).map { Usage(json: $0) },
                              toolUses: tools, text: text.isEmpty ? nil : text,
                              error: obj["error"] as? String)
        case "user":
            let content = (obj["message"] as? [String: Any])?["content"] as? [[String: Any]] ?? []
            if let r = content.first(where: { $0["type"] as? String == "tool_result" }) {
                return .toolResult(toolUseID: r["tool_use_id"] as? String, isError: r["is_error"] as? Bool ?? false)
            }
            return .other(type: "user")
        case "rate_limit_event":
            let info = obj["rate_limit_info"] as? [String: Any] ?? [:]
            var status = info["status"] as? String ?? "unknown"
            // Overage that is in use and rejected blocks as surely as a rejected plan window.
            if info["isUsingOverage"] as? Bool == true, info["overageStatus"] as? String == "rejected" { status = "rejected" }
            let resetsAt = (info["resetsAt"] as? NSNumber)?.doubleValue, kind = info["rateLimitType"] as? String
            let now = Date().timeIntervalSince1970
            var windows: [String: WindowUse] = [:]
            if let kind, let used = (info["utilization"] as? NSNumber)?.doubleValue { windows[kind] = WindowUse(utilization: used, resetsAt: resetsAt, at: now) }
            for (name, w) in info["unifiedWindows"] as? [String: [String: Any]] ?? [:] {
                guard let used = (w["utilization"] as? NSNumber)?.doubleValue else { continue }
                windows[name] = WindowUse(utilization: used, resetsAt: (w["resetsAt"] as? NSNumber)?.doubleValue, at: now)
            }
            return .rateLimit(status: status, resetsAt: resetsAt, kind: kind, windows: windows)
        case "result":
            var text = obj["result"] as? String ?? ""
            if text.isEmpty, let errors = obj["errors"] as? [String] { text = errors.joined(separator: "; ") }
            let modelUsage = obj["modelUsage"] as? [String: [String: Any]] ?? [:]
            let window = modelUsage.values.compactMap { ($0["contextWindow"] as? NSNumber)?.intValue }.max()
            let denials = (obj["permission_denials"] as? [[String: Any]] ?? []).compactMap { $0["tool_name"] as? String }
            return .result(ClaudeResult(
                isError: obj["is_error"] as? Bool ?? false, subtype: obj["subtype"] as? String ?? "",
                text: text, totalCostUSD: (obj["total_cost_usd"] as? NSNumber)?.doubleValue,
                terminalReason: obj["terminal_reason"] as? String,
                apiErrorStatus: (obj["api_error_status"] as? NSNumber)?.intValue,
                contextWindow: window, numTurns: (obj["num_turns"] as? NSNumber)?.intValue,
                usage: (obj["usage"] as? [String: Any]).map { Usage(json: $0) },
                modelUsage: modelUsage.mapValues { ModelUsage(usage: Usage(modelUsage: $0), costUSD: ($0["costUSD"] as? NSNumber)?.doubleValue ?? 0) },
                permissionDenials: denials, apiErrorType: obj["api_error_type"] as? String ?? obj["api_error"] as? String))
        default:
            return .other(type: type)
        }
    }
}

/// Finds where a JSON object that starts at an index ends (brace matching that respects strings).
enum JSONScan {
    static func objectEnd(_ b: [UInt8], from start: Int) -> Int? {
        var depth = 0
        var inString = false
        var escaped = false
        var i = start
        while i < b.count {
            let c = b[i]
            if inString {
                if escaped { escaped = false } else if c == UInt8(ascii: "\\") { escaped = true } else if c == UInt8(ascii: "\"") { inString = false }
            } else if c == UInt8(ascii: "\"") {
                inString = true
            } else if c == UInt8(ascii: "{") {
                depth += 1
            } else if c == UInt8(ascii: "}") {
                depth -= 1
                if depth == 0 { return i + 1 }
            }
            i += 1
        }
        return nil
    }
}
