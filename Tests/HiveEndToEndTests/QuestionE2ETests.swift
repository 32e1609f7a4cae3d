import Foundation
import HiveClient
import HiveWire
import Testing

/// Questions end to end: asked through the real `ask` MCP tool, answered by the operator on the CLI and
/// by a peer through its own tool, expired by core; each outcome arrives as a message that drives a turn.
@Suite("Questions end to end", .timeLimit(.minutes(3)))
struct QuestionE2ETests {
    @Test("ask the operator and a peer; the CLI and the peer answer; an unanswered one expires; each outcome reaches the asker")
    func questions() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        try await hive.spawn("bob")
        // Question 1: straight on iris's socket, with the shortest time to live.
        let short = try await hive.agent("iris").call(AskCommand(question: "Anyone there?", ttlSeconds: 10))
        #expect(short.id == 1 && short.to == "operator")
        try hive.startAgent("iris", script: ["by_prompt": [
            ["contains": "pick an env", "step": ["kind": "tools", "calls": [["tool": "ask", "arguments": [
                "question": "Which env do I deploy to?", "options": ["staging", "prod"], "ttl_seconds": 600]]]]],
            ["contains": "check with bob", "step": ["kind": "tools", "calls": [["tool": "ask", "arguments": [
                "question": "Is the build green?", "to": "bob"]]]]],
        ]])
        try hive.startAgent("bob", script: ["by_prompt": [
            ["contains": "[question 3 from iris]", "step": ["kind": "tools", "calls": [["tool": "answer", "arguments": ["id": 3, "answer": "green, 412 tests"]]]]],
        ]])
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "pick an env"))
        try await hive.eventually("question 2 is open") { try await hive.admin().call(QuestionsCommand()).questions.contains { $0.id == 2 } }
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "check with bob"))

        let listed = try hive.cli(["questions"])
        #expect(listed.status == 0)
        #expect(listed.out.contains("#2 iris → operator — open") && listed.out.contains("  2. prod"), "\(listed.out)")
        #expect(try hive.cli(["answer", "2", "--choice", "dev"]).err.contains("'dev' is not an option of question 2"))
        let answered = try hive.cli(["answer", "2", "--choice", "2", "after", "lunch"])
        #expect(answered.status == 0 && answered.out.contains("answered"), "\(answered.err)")

        func prompt(_ marker: String) -> String? {
            hive.runs(of: "iris").compactMap { $0["prompt"] as? String }.first { $0.contains(marker) }
        }
        try await hive.eventually("the operator's answer drove a turn of iris") { prompt("[answer to question 2]") != nil }
        #expect(prompt("[answer to question 2]")?.contains("chose: prod; note: after lunch") == true)
        try await hive.eventually("bob's answer drove a turn of iris") { prompt("[answer to question 3]") != nil }
        #expect(prompt("[answer to question 3]")?.contains("green, 412 tests") == true)
        try await hive.eventually("question 1 expired and iris was told", timeout: .seconds(30)) { prompt("[question 1 expired]") != nil }

        let all = try await hive.admin().call(QuestionsCommand(all: true)).questions
        #expect(all.first { $0.id == 1 }?.state == .expired)
        #expect(all.first { $0.id == 3 }?.answeredBy == "bob")
        #expect(try hive.cli(["answer", "1", "too", "late"]).err.contains("question 1 is expired"))
    }
}
