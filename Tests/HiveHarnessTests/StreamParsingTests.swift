import Foundation
@testable import HiveHarness
import HiveWire
import Testing

@Suite("stream-json parsing and turn accounting")
struct StreamParsingTests {
    func feed(_ lines: [String]) -> TurnAccumulator {
        var acc = TurnAccumulator()
        for l in lines { for e in ClaudeEvent.events(in: Data(l.utf8)) { acc.consume(e) } }
        return acc
    }

    let initLine = #"{"type":"system","subtype":"init","session_id":"s-1","model":"claude-sonnet-4-5","cwd":"/x"}"#
    func assistant(_ id: String, text: String? = nil, tool: (String, String)? = nil, input: Int = 3, cacheRead: Int = 14800, cacheWrite: Int = 2100, output: Int = 60) -> String {
        var block = #"{"type":"text","text":"\#(text ?? "hi")"}"#
        if let tool { block = #"{"type":"tool_use","id":"\#(tool.0)","name":"\#(tool.1)","input":{}}"# }
        return #"{"type":"assistant","message":{"id":"\#(id)","content":[\#(block)],"usage":{"input_tokens":\#(input),"cache_creation_input_tokens":\#(cacheWrite),"cache_read_input_tokens":\#(cacheRead),"output_tokens":\#(output)}}}"#
    }
    let okResult = #"{"type":"result","subtype":"success","is_error":false,"result":"done","total_cost_usd":0.1834,"modelUsage":{"m":{"contextWindow":200000}}}"#

    @Test("session, model, deduped usage, context from the last message, tools and cost")
    func accounting() {
        let acc = feed([
            initLine,
            assistant("msg_1", text: "thinking"),
            assistant("msg_1", tool: ("toolu_1", "mcp__hive__send")),   // same message, second block: same usage
            #"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"ok","is_error":false}]}}"#,
            assistant("msg_2", tool: ("toolu_2", "Read"), input: 5, cacheRead: 17000, cacheWrite: 100, output: 40),
            assistant("msg_2", tool: ("toolu_2", "Read"), input: 5, cacheRead: 17000, cacheWrite: 100, output: 40), // a repeated line
            #"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed"}}"#,
            okResult,
        ])
        #expect(acc.sessionID == "s-1")
        #expect(acc.model == "claude-sonnet-4-5")
        #expect(acc.usage == Usage(input: 8, output: 100, cacheRead: 31800, cacheCreation: 2200))
        #expect(acc.contextTokens == 5 + 100 + 17000)
        #expect(acc.toolCalls == ["mcp__hive__send": 1, "Read": 1])
        #expect(acc.cliCostUSD(previous: [:]) == 0, "no modelUsage: the running total is never taken as the turn's cost")
        #expect(acc.result?.contextWindow == 200000)
        #expect(acc.outcome(exitStatus: 0) == .ok)
    }

    @Test("unknown types are kept and ignored; non-JSON lines become notes; huge lines parse")
    func tolerance() {
        let big = String(repeating: "x", count: 3_000_000)
        let acc = feed([
            "Warning: no stdin data received in 3s, proceeding without it.",
            initLine,
            #"{"type":"future_thing","x":1}"#,
            #"{"type":"system","subtype":"hook_started"}"#,
            assistant("msg_9", text: big),
            okResult,
        ])
        #expect(acc.notes == 1)
        #expect(acc.events == 6)
        #expect(ClaudeEvent.parse(Data(#"{"type":"future_thing"}"#.utf8)) == .other(type: "future_thing"))
        #expect(acc.outcome(exitStatus: 0) == .ok)
    }

    @Test("is_error decides failure whatever the subtype and exit code")
    func isErrorWins() {
        let acc = feed([initLine, #"{"type":"result","subtype":"success","is_error":true,"result":"API Error: 400 bad request","terminal_reason":"api_error"}"#])
        #expect(acc.outcome(exitStatus: 0) == .failed("API Error: 400 bad request"))
        let errs = feed([#"{"type":"result","subtype":"error_max_turns","is_error":true,"errors":["Reached maximum number of turns (60)"]}"#])
        #expect(errs.outcome(exitStatus: 1) == .failed("Reached maximum number of turns (60)"))
    }

    @Test("a crash without a result is a failure")
    func crash() {
        #expect(feed([initLine, assistant("m", text: "half")]).outcome(exitStatus: 1) == .failed("claude exited with status 1 without a result"))
        #expect(feed([]).outcome(exitStatus: nil) == .failed("claude was stopped before it finished"))
    }

    @Test("a rejected rate_limit_event parks until its resetsAt, whatever the result says")
    func rejectedEvent() {
        let acc = feed([initLine,
                        #"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1767225600,"rateLimitType":"five_hour"}}"#,
                        #"{"type":"result","subtype":"success","is_error":true,"result":"You've hit your session limit · resets 3pm (Europe/Berlin)","api_error_status":429}"#])
        let before = Date(timeIntervalSince1970: 1767225600 - 3600)
        #expect(acc.outcome(exitStatus: 1, now: before) == .rateLimited(until: 1767225600, window: "five_hour"))
        // A reset in the past or years ahead is clamped to a minute .. a week from now.
        let later = Date(timeIntervalSince1970: 1767225600 + 3600)
        #expect(acc.outcome(exitStatus: 1, now: later) == .rateLimited(until: later.timeIntervalSince1970 + 60, window: "five_hour"))
        let far = feed([#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":99999999999,"rateLimitType":"seven_day_opus"}}"#])
        #expect(far.outcome(exitStatus: 1, now: before) == .rateLimited(until: before.timeIntervalSince1970 + 7 * 86400, window: "seven_day_opus"))
        let overage = feed([#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed","isUsingOverage":true,"overageStatus":"rejected"}}"#])
        #expect(overage.rejectedUntil == 0)
        let informational = feed([#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed","overageStatus":"rejected"}}"#, okResult])
        #expect(informational.outcome(exitStatus: 0) == .ok)
    }

    @Test("error results: limits, transient errors, prompt too long, login")
    func errorResults() {
        func outcome(_ text: String, status: Int? = nil) -> TurnOutcome {
            let s = status.map { ",\"api_error_status\":\($0)" } ?? ""
            return feed([#"{"type":"result","subtype":"success","is_error":true,"result":"\#(text)"\#(s)}"#]).outcome(exitStatus: 1)
        }
        guard case .rateLimited(let until?, nil) = outcome("Claude AI usage limit reached|1750708800") else { Issue.record("epoch form not parked"); return }
        #expect(until >= Date().timeIntervalSince1970 + 59, "a reset in the past is clamped to a minute from now")
        guard case .needsBilling = outcome("Credit balance is too low") else { Issue.record("billing not detected"); return }
        #expect(outcome("Prompt is too long") == .promptTooLong)
        #expect(outcome("Prompt is too long · automatic compaction failed: x") == .promptTooLong)
        guard case .transient = outcome("API Error: 529 Overloaded. This is a server-side issue, usually temporary — try again in a moment.") else {
            Issue.record("overload is not transient"); return
        }
        guard case .transient = outcome("API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited", status: 429) else {
            Issue.record("server throttling is not transient"); return
        }
        guard case .transient = outcome("API Error: Request rejected (429) · Rate limited", status: 429) else {
            Issue.record("429 rejection is not transient"); return
        }
        guard case .needsLogin = outcome("Not logged in · Please run /login") else { Issue.record("login not detected"); return }
        guard case .rateLimited = outcome("This request would exceed your account's rate limit. Please try again later.", status: 429) else {
            Issue.record("429 limit prose not parked"); return
        }
    }
}

@Suite("What the real CLI's result line says")
struct ResultLineTests {
    /// A result line as Claude Code 2.1.332 writes it on a continued session: `usage` is this run's,
    /// `modelUsage` and `total_cost_usd` are the session's running totals.
    static let continued = #"{"type":"result","subtype":"success","is_error":false,"result":"ok","session_id":"s-1","total_cost_usd":0.5,"usage":{"input_tokens":200,"cache_creation_input_tokens":300,"cache_read_input_tokens":4000,"output_tokens":84,"cache_creation":{"ephemeral_1h_input_tokens":100,"ephemeral_5m_input_tokens":200}},"modelUsage":{"claude-opus-5-5":{"inputTokens":400,"outputTokens":168,"cacheReadInputTokens":8000,"cacheCreationInputTokens":600,"cacheCreationEphemeral1hInputTokens":200,"costUSD":0.4,"contextWindow":1000000},"claude-haiku-4-5":{"inputTokens":50,"outputTokens":10,"costUSD":0.1}},"permission_denials":[{"tool_name":"Bash","tool_use_id":"t1","tool_input":{}},{"tool_name":"mcp__github__create_issue","tool_use_id":"t2","tool_input":{}}]}"#
    static let streaming = #"{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"x"}],"usage":{"input_tokens":200,"cache_creation_input_tokens":300,"cache_read_input_tokens":4000,"output_tokens":1}}}"#

    func feed(_ lines: [String]) -> TurnAccumulator {
        var acc = TurnAccumulator()
        for l in lines { for e in ClaudeEvent.events(in: Data(l.utf8)) { acc.consume(e) } }
        return acc
    }

    @Test("tokens come from the result line, not the streaming start values; the cache-write split is kept")
    func tokensFromResult() {
        let acc = feed([#"{"type":"system","subtype":"init","session_id":"s-1","claude_code_version":"2.1.332"}"#, Self.streaming, Self.continued])
        #expect(acc.usage == Usage(input: 200, output: 84, cacheRead: 4000, cacheCreation: 300, cacheCreation1h: 100))
        #expect(acc.cliVersion == "2.1.332")
        #expect(acc.permissionDenials == ["Bash", "mcp__github__create_issue"])
    }

    @Test("a continued turn costs its own share: the running totals minus what the session's last turn reported")
    func costDelta() {
        let acc = feed([Self.continued])
        let previous = ["claude-opus-5-5": ModelUsage(usage: Usage(input: 200, output: 84, cacheRead: 4000, cacheCreation: 300, cacheCreation1h: 100), costUSD: 0.25)]
        let shares = acc.turnModelUsage(previous: previous)
        #expect(abs(shares["claude-opus-5-5"]!.costUSD - 0.15) < 1e-9)
        #expect(shares["claude-opus-5-5"]!.usage == Usage(input: 200, output: 84, cacheRead: 4000, cacheCreation: 300, cacheCreation1h: 100))
        #expect(abs(shares["claude-haiku-4-5"]!.costUSD - 0.1) < 1e-9, "a model new to the session counts whole")
        #expect(abs(acc.cliCostUSD(previous: previous) - 0.25) < 1e-9)
        #expect(abs(acc.cliCostUSD(previous: [:]) - 0.5) < 1e-9, "a fresh session's totals are the turn's")
        // Totals that went down: the CLI started counting afresh, so what it reports is the turn's.
        let reset = ["claude-opus-5-5": ModelUsage(usage: Usage(output: 9999), costUSD: 9)]
        #expect(abs(acc.cliCostUSD(previous: reset) - 0.5) < 1e-9)
    }

    @Test("a rate_limit_event's window use (unifiedWindows, or its own utilization) is kept for the turn report, the latest of each window")
    func windowUse() {
        let acc = feed([
            #"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed","rateLimitType":"five_hour","utilization":0.4,"resetsAt":1796230000}}"#,
            #"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed_warning","unifiedWindows":{"five_hour":{"utilization":0.81,"resetsAt":1796230000},"seven_day":{"utilization":0.3}}}}"#,
        ])
        #expect(acc.windows["five_hour"]?.utilization == 0.81 && acc.windows["five_hour"]?.resetsAt == 1_796_230_000)
        #expect(acc.windows["seven_day"]?.utilization == 0.3 && acc.windows["seven_day"]?.resetsAt == nil)
        #expect(acc.rejectedUntil == nil, "allowed events hold nothing")
    }

    @Test("a rate_limit_event spliced into the middle of the result line loses neither")
    func splicedLine() {
        let event = #"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1767225600,"rateLimitType":"five_hour"}}"#
        let line = Self.continued
        let cut = line.index(line.startIndex, offsetBy: 120)
        let spliced = String(line[..<cut]) + event + String(line[cut...])
        let acc = feed([spliced])
        #expect(acc.result?.usage?.output == 84, "the result survived")
        #expect(acc.rejectedUntil == 1767225600, "the event survived")
        let broken = feed([String(line.prefix(200))])
        #expect(broken.result == nil && broken.notes == 1, "a truncated line is a note, not a crash")
    }

    @Test("text the model writes cannot forge a line: lines end at \\n only, and an event nested in a broken line is not believed")
    func forgedLines() {
        // U+2028 inside a JSON string is legal and unescaped; it does not end a line.
        var split = NewlineSplitter(maxLineBytes: 1 << 20)
        let text = Data(#"{"type":"assistant","message":{"content":[{"type":"text","text":"a\#u{2028}{"type":"result"}"}]}}"#.utf8) + Data("\n".utf8)
        let lines = text.withUnsafeBytes { split.feed($0) }
        #expect(lines.count == 1)
        // A line cut short (too long) that holds a fake event in a tool's input: nothing is taken from it.
        let fake = #"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t","name":"x","input":{"a":{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":9999999999}},"b":"#
        let acc = feed([fake])
        #expect(acc.rejectedUntil == nil)
        // A turn that ended well is ok whatever was said before.
        let ok = feed([#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1767225600}}"#,
                       #"{"type":"result","subtype":"success","is_error":false,"result":"fine"}"#])
        #expect(ok.outcome(exitStatus: 0) == .ok)
        // Long lines are cut at the cap; the next line is whole.
        var small = NewlineSplitter(maxLineBytes: 4)
        let parts = Data("abcdefgh\nxy\n".utf8).withUnsafeBytes { small.feed($0) }
        #expect(parts == [Data("abcd".utf8), Data("xy".utf8)])
    }

    @Test("every wording in the reference is a limit (parked, with its reset time when it gives one), a billing stop or a transient error", arguments: LimitTextCorpus.texts.indices)
    func corpus(_ i: Int) {
        let (kind, timed, text) = LimitTextCorpus.texts[i]
        let now = Date(timeIntervalSince1970: 1795687200)
        let got = LimitText.classify(text, apiStatus: nil, now: now)
        switch kind {
        case .limit:
            guard case .usageLimit(let at) = got else { Issue.record("not a limit: \(text)"); return }
            if timed { #expect(at != nil, "no reset time read from: \(text)") }
        case .billing: #expect(got == .billing, "\(text)")
        case .transient: #expect(got == .transient, "\(text)")
        }
    }
}

@Suite("Usage-limit reset times")
struct LimitTextTests {
    // 2026-11-26 10:00 UTC
    let now = Date(timeIntervalSince1970: 1795687200)

    func utc(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int = 0, zone: String = "UTC") -> Double {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = TimeZone(identifier: zone)!
        return c.date(from: DateComponents(year: y, month: mo, day: d, hour: h, minute: mi))!.timeIntervalSince1970
    }

    @Test("every form in the reference gives the right instant", arguments: [
        ("Claude AI usage limit reached|1750708800", 1750708800.0),
        ("Claude usage limit reached. Your limit will reset at 5pm (Europe/Warsaw).", -1),
    ])
    func epochAndWarsaw(_ text: String, _ expected: Double) {
        let got = LimitText.resetTime(in: text, now: now)
        if expected > 0 { #expect(got == expected) } else { #expect(got == utc(2026, 11, 26, 17, zone: "Europe/Warsaw")) }
    }

    @Test("times with zones, minutes, rolling to tomorrow, and dates")
    func clockTimes() {
        #expect(LimitText.resetTime(in: "You've hit your limit · resets 3pm (Europe/Berlin)", now: now) == utc(2026, 11, 26, 15, zone: "Europe/Berlin"))
        // 12:50am Los Angeles has passed today (it is 02:00 there): tomorrow.
        #expect(LimitText.resetTime(in: "You've hit your session limit · resets 12:50am (America/Los_Angeles)", now: now)
                == utc(2026, 11, 27, 0, 50, zone: "America/Los_Angeles"))
        #expect(LimitText.resetTime(in: "You've hit your weekly limit · resets Sep 21, 6pm (America/Toronto)", now: now)
                == utc(2027, 9, 21, 18, zone: "America/Toronto"))
        #expect(LimitText.resetTime(in: "5-hour limit reached ∙ resets 12pm", now: now) == utc(2026, 11, 26, 12))
        #expect(LimitText.resetTime(in: "Session limit reached ∙ resets 9am", now: now) == utc(2026, 11, 27, 9))
        #expect(LimitText.resetTime(in: "limit reached, no time given", now: now) == nil)
    }

    @Test("agents writing about limits are not mistaken for a limit unless it is an error text")
    func classification() {
        #expect(LimitText.classify("I summarised the usage limits doc", now: now) == .other)
        #expect(LimitText.classify("You've hit your limit · resets 1pm (Europe/Lisbon)", now: now)
                == .usageLimit(resetsAt: utc(2026, 11, 26, 13, zone: "Europe/Lisbon")))
    }
}
