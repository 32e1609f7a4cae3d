import Foundation
import Synchronization

/// The model behind the stand-in API: it reads its script from the conversation itself.
///
/// The real Claude Code CLI runs unchanged against this; only the model is ours. A test (or the bench)
/// writes directives into the message it sends an agent, one per line, and the harness's wake prompt
/// carries them to the "model":
///
/// | directive | what the model does |
/// |---|---|
/// | `@tool NAME {json}` | calls a tool (`send` means `mcp__hive__send`; a name with `__` or a capital is used as is) |
/// | `@say TEXT` | ends the turn with this text (default: `done`) |
/// | `@sleep S` | waits S seconds before its first answer of the turn |
/// | `@usage in=N out=N read=N w5m=N w1h=N` | the usage every answer of the turn reports |
/// | `@limit TYPE [reset=S] [times=N]` | a subscriber's usage limit (429 with the unified headers) for window TYPE |
/// | `@ratelimit [retry-after=S] [times=N]` | an API-key 429 |
/// | `@overloaded [times=N]` | 529 overloaded |
/// | `@too-long [times=N]` | 400 prompt is too long |
/// | `@billing` | 400 credit balance too low |
///
/// `times=N` makes an error fire only on the first N requests that reach it (counted per directive line
/// over the stand-in's life, since the CLI's prompts carry changing reminders), so a retried turn can
/// get through. `$HISTORY` in a tool's input becomes every `mark:WORD` the model sees (prompts and tool results)
/// in the whole conversation, comma-separated, which shows what a session remembers. A compaction
/// request (the CLI asks for a "detailed summary") is answered with a summary that keeps the marks.
public final class ScriptedModel: Sendable {
    private let fired = Mutex<[String: Int]>([:])
    /// Unix time the model reads (an injectable clock for reset times).
    let now: @Sendable () -> Double

    public init(now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.now = now
    }

    /// What the model answers.
    public enum Reply: Equatable, Sendable {
        case message(blocks: [Block], stopReason: String, usage: TokenUsage, delay: Double)
        case error(status: Int, type: String, message: String, headers: [String: String])
    }

    public enum Block: Equatable, Sendable {
        case text(String)
        case toolUse(id: String, name: String, input: String)
    }

    public struct TokenUsage: Equatable, Sendable {
        public var input = 0, output = 0, cacheRead = 0, cacheWriteShort = 0, cacheWriteLong = 0
        public init(input: Int = 0, output: Int = 0, cacheRead: Int = 0, cacheWriteShort: Int = 0, cacheWriteLong: Int = 0) {
            self.input = input; self.output = output; self.cacheRead = cacheRead
            self.cacheWriteShort = cacheWriteShort; self.cacheWriteLong = cacheWriteLong
        }
    }

    /// Decides the answer to one `POST /v1/messages` body.
    public func reply(to body: [String: Any], apiKey: Bool) -> Reply {
        let messages = body["messages"] as? [[String: Any]] ?? []
        let tools = Set((body["tools"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String })
        let lastText = Self.texts(of: messages.last).joined(separator: "\n")
        let allText = messages.filter { $0["role"] as? String == "user" }.flatMap { Self.texts(of: $0) }.joined(separator: "\n")
        // What the model sees: the prompts, and what the tools answered (a search's hits, a read message).
        let marks = Self.marks(in: allText + "\n" + Self.toolResults(in: messages).joined(separator: "\n"))
        var usage = TokenUsage(input: inputEstimate(body), output: 12)

        if lastText.contains("detailed summary") && !lastText.contains("@") || lastText.contains("Your task is to create a detailed summary") {
            let summary = "Summary of the conversation so far. Marks seen: " + marks.map { "mark:\($0)" }.joined(separator: " ")
            return .message(blocks: [.text(summary)], stopReason: "end_turn", usage: usage, delay: 0)
        }
        guard let (promptIndex, prompt) = Self.currentPrompt(messages) else {
            return .message(blocks: [.text("done")], stopReason: "end_turn", usage: usage, delay: 0)
        }
        let directives = Self.directives(in: prompt)
        var delay = 0.0
        var steps: [Directive] = []
        for d in directives {
            switch d.verb {
            case "usage":
                usage = TokenUsage(input: d.int("in") ?? usage.input, output: d.int("out") ?? usage.output,
                                   cacheRead: d.int("read") ?? 0, cacheWriteShort: d.int("w5m") ?? 0, cacheWriteLong: d.int("w1h") ?? 0)
            case "sleep":
                delay = Double(d.rest.trimmingCharacters(in: .whitespaces)) ?? 0
            case "limit", "ratelimit", "overloaded", "too-long", "billing":
                if let times = d.int("times") {
                    let n = fired.withLock { f -> Int in
                        let k = d.verb + d.rest
                        f[k, default: 0] += 1
                        return f[k]!
                    }
                    if n > times { continue }
                }
                return error(d)
            case "tool", "say":
                steps.append(d)
            default:
                continue
            }
        }
        // Where in the turn we are: each answer the model gave since the prompt is one step taken
        // (a ToolSearch that loaded a tool is not a step of the script).
        let answered = messages[(promptIndex + 1)...].filter { m in
            guard m["role"] as? String == "assistant" else { return false }
            let names = (m["content"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            return !(names.count == 1 && names[0] == "ToolSearch")
        }.count
        guard answered < steps.count else {
            return .message(blocks: [.text("done")], stopReason: "end_turn", usage: usage, delay: answered == 0 ? delay : 0)
        }
        let step = steps[answered]
        // The first answer of a turn is the slow one (the CLI may retry it; each retry is slow again).
        let firstDelay = answered == 0 ? delay : 0
        if step.verb == "say" {
            return .message(blocks: [.text(step.rest.trimmingCharacters(in: .whitespaces))], stopReason: "end_turn", usage: usage, delay: firstDelay)
        }
        let (name, input) = step.toolCall(history: marks)
        let id = "toolu_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(20))"
        if !tools.contains(name), tools.contains("ToolSearch") {
            // A deferred tool: load it first, as the real model must.
            let search = #"{"query":"select:\#(name)"}"#
            return .message(blocks: [.toolUse(id: id, name: "ToolSearch", input: search)], stopReason: "tool_use", usage: usage, delay: firstDelay)
        }
        return .message(blocks: [.toolUse(id: id, name: name, input: input)], stopReason: "tool_use", usage: usage, delay: firstDelay)
    }

    /// Input tokens reported when the script does not say: about four bytes of request a token.
    func inputEstimate(_ body: [String: Any]) -> Int {
        max(1, ((try? JSONSerialization.data(withJSONObject: body)).map(\.count) ?? 0) / 4)
    }

    private func error(_ d: Directive) -> Reply {
        switch d.verb {
        case "limit":
            let type = d.words.first ?? "five_hour"
            let reset = Int(now()) + (d.int("reset") ?? 3600)
            var headers = ["anthropic-ratelimit-unified-status": "rejected",
                           "anthropic-ratelimit-unified-reset": "\(reset)",
                           "anthropic-ratelimit-unified-representative-claim": type]
            let windowHeader = ["five_hour": "5h", "seven_day": "7d"][type]
            if let w = windowHeader {
                headers["anthropic-ratelimit-unified-\(w)-status"] = "rejected"
                headers["anthropic-ratelimit-unified-\(w)-reset"] = "\(reset)"
                headers["anthropic-ratelimit-unified-\(w)-utilization"] = "1.0"
            }
            return .error(status: 429, type: "rate_limit_error", message: "Rate limited", headers: headers)
        case "ratelimit":
            var headers: [String: String] = [:]
            if let after = d.int("retry-after") { headers["retry-after"] = "\(after)" }
            return .error(status: 429, type: "rate_limit_error",
                          message: "This request would exceed your organization's rate limit of 50,000 input tokens per minute.", headers: headers)
        case "overloaded":
            return .error(status: 529, type: "overloaded_error", message: "Overloaded", headers: [:])
        case "too-long":
            return .error(status: 400, type: "invalid_request_error", message: "prompt is too long: 1204381 tokens > 1000000 maximum", headers: [:])
        default:
            return .error(status: 400, type: "invalid_request_error",
                          message: "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
                          headers: [:])
        }
    }

    // MARK: Reading the conversation

    struct Directive {
        var verb: String
        var rest: String
        var words: [String] { rest.split(separator: " ").map(String.init).filter { !$0.contains("=") } }
        func int(_ key: String) -> Int? {
            for w in rest.split(separator: " ") where w.hasPrefix("\(key)=") { return Int(w.dropFirst(key.count + 1)) }
            return nil
        }
        /// `@tool NAME {json}`: the full tool name and its input, `$HISTORY` filled in.
        func toolCall(history: [String]) -> (String, String) {
            let trimmed = rest.trimmingCharacters(in: .whitespaces)
            let name = String(trimmed.prefix { !$0.isWhitespace })
            var input = String(trimmed.dropFirst(name.count)).trimmingCharacters(in: .whitespaces)
            if input.isEmpty { input = "{}" }
            input = input.replacingOccurrences(of: "$HISTORY", with: history.joined(separator: ","))
            let full = name.contains("__") || name.first?.isUppercase == true ? name : "mcp__hive__\(name)"
            return (full, input)
        }
    }

    /// The directive lines of a prompt, each once: after a failed turn the CLI sends the retried prompt
    /// in the same user message as the failed one, so the same lines come twice.
    static func directives(in text: String) -> [Directive] {
        var seen: Set<String> = []
        return text.split(separator: "\n").compactMap { line in
            let l = line.trimmingCharacters(in: .whitespaces)
            guard l.hasPrefix("@"), l.count > 1, seen.insert(l).inserted else { return nil }
            let verb = String(l.dropFirst().prefix { !$0.isWhitespace })
            return Directive(verb: verb, rest: String(l.dropFirst(1 + verb.count)))
        }
    }

    static func marks(in text: String) -> [String] {
        var seen: [String] = []
        for m in text.matches(of: #/mark:([A-Za-z0-9_-]+)/#) where !seen.contains(String(m.output.1)) { seen.append(String(m.output.1)) }
        return seen
    }

    /// The text blocks of a message, without the CLI's `<system-reminder>` blocks.
    static func texts(of message: [String: Any]?) -> [String] {
        guard let message else { return [] }
        if let s = message["content"] as? String { return [s] }
        return (message["content"] as? [[String: Any]] ?? []).compactMap { block in
            guard block["type"] as? String == "text", let t = block["text"] as? String,
                  !t.hasPrefix("<system-reminder>") else { return nil }
            return t
        }
    }

    /// The text of every tool result in the conversation, in order.
    static func toolResults(in messages: [[String: Any]]) -> [String] {
        messages.filter { $0["role"] as? String == "user" }.flatMap { m -> [String] in
            (m["content"] as? [[String: Any]] ?? []).filter { $0["type"] as? String == "tool_result" }.flatMap { block -> [String] in
                if let s = block["content"] as? String { return [s] }
                return (block["content"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String }
            }
        }
    }

    /// The last user message that is a prompt (text, not only tool results), and its index.
    static func currentPrompt(_ messages: [[String: Any]]) -> (Int, String)? {
        for (i, m) in messages.enumerated().reversed() where m["role"] as? String == "user" {
            let blocks = m["content"] as? [[String: Any]] ?? []
            if blocks.contains(where: { $0["type"] as? String == "tool_result" }) { continue }
            let text = texts(of: m).joined(separator: "\n")
            if !text.isEmpty { return (i, text) }
        }
        return nil
    }
}
