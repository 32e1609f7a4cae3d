import Foundation
@testable import ModelStandIn
import Testing

/// The stand-in's model reads its script from the conversation; these pin how it walks a turn.
@Suite("Scripted model")
struct ScriptedModelTests {
    func request(_ messages: [[String: Any]], tools: [String] = ["mcp__hive__send", "Bash"]) -> [String: Any] {
        ["model": "claude-sonnet-4-5", "messages": messages, "tools": tools.map { ["name": $0] }]
    }

    func user(_ text: String) -> [String: Any] {
        ["role": "user", "content": [["type": "text", "text": "<system-reminder>today is x</system-reminder>"], ["type": "text", "text": text]]]
    }

    @Test("steps: a tool call per answer, then the final text; deferred tools are searched for first")
    func steps() {
        let m = ScriptedModel()
        let prompt = user("hello\n@tool send {\"to\":\"operator\",\"body\":\"hi\"}\n@say bye")
        guard case .message(let b1, "tool_use", _, _) = m.reply(to: request([prompt]), apiKey: true),
              case .toolUse(let id, "mcp__hive__send", let input) = b1.first else { Issue.record("no tool call"); return }
        #expect(input == #"{"to":"operator","body":"hi"}"#)
        let afterTool: [[String: Any]] = [prompt, ["role": "assistant", "content": [["type": "tool_use", "id": id, "name": "mcp__hive__send", "input": [:]]]],
                                          ["role": "user", "content": [["type": "tool_result", "tool_use_id": id, "content": "ok"]]]]
        #expect(m.reply(to: request(afterTool), apiKey: true) == .message(blocks: [.text("bye")], stopReason: "end_turn", usage: ScriptedModel.TokenUsage(input: m.inputEstimate(request(afterTool)), output: 12), delay: 0))
        guard case .message(let b2, _, _, _) = m.reply(to: request([prompt], tools: ["ToolSearch"]), apiKey: true),
              case .toolUse(_, "ToolSearch", let q) = b2.first else { Issue.record("no tool search"); return }
        #expect(q.contains("select:mcp__hive__send"))
    }

    @Test("an error with times=N fires N times, then the script goes on")
    func times() {
        let m = ScriptedModel()
        let r = request([user("@overloaded times=2\n@say fine")])
        for _ in 0..<2 {
            guard case .error(529, _, _, _) = m.reply(to: r, apiKey: true) else { Issue.record("no 529"); return }
        }
        guard case .message(let blocks, _, _, _) = m.reply(to: r, apiKey: true) else { Issue.record("still failing"); return }
        #expect(blocks == [.text("fine")])
        // The retried prompt comes in the same message as the failed one: still counted once per request.
        let twice = request([user("@ratelimit times=1\n@say ok\n\n@ratelimit times=1\n@say ok")])
        guard case .error(429, _, _, _) = m.reply(to: twice, apiKey: true) else { Issue.record("no 429"); return }
        guard case .message = m.reply(to: twice, apiKey: true) else { Issue.record("a repeated prompt fired twice"); return }
    }

    @Test("a subscriber's limit carries the unified headers with the reset from the model's clock")
    func limitHeaders() {
        let m = ScriptedModel(now: { 1_000_000 })
        guard case .error(429, _, _, let h) = m.reply(to: request([user("@limit seven_day reset=600")]), apiKey: false) else { Issue.record("no 429"); return }
        #expect(h["anthropic-ratelimit-unified-status"] == "rejected")
        #expect(h["anthropic-ratelimit-unified-reset"] == "1000600")
        #expect(h["anthropic-ratelimit-unified-representative-claim"] == "seven_day")
    }

    @Test("$HISTORY is every mark the conversation holds; compaction requests get a summary that keeps them")
    func history() {
        let m = ScriptedModel()
        let r = request([user("mark:a"), ["role": "assistant", "content": [["type": "text", "text": "ok"]]],
                         user("mark:b\n@tool send {\"body\":\"$HISTORY\"}")])
        guard case .message(let b, _, _, _) = m.reply(to: r, apiKey: true), case .toolUse(_, _, let input) = b.first else { Issue.record("no call"); return }
        #expect(input == #"{"body":"a,b"}"#)
        let compact = request([user("mark:a"), user("Your task is to create a detailed summary of the conversation so far")])
        guard case .message(let s, _, _, _) = m.reply(to: compact, apiKey: true), case .text(let text) = s.first else { Issue.record("no summary"); return }
        #expect(text.contains("mark:a"))
    }
}
