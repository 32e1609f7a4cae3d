import Foundation
import HiveClient
import HiveWire
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Reminders end to end", .timeLimit(.minutes(3)))
struct ReminderE2ETests {
    @Test("a reminder arrives after its delay from 'reminder'; at_unix works; status counts pending")
    func arrival() async throws {
        let hive = try LiveHive()
        try await hive.start()
        let me = try hive.agent("manager")
        // One far in the future: it stays pending whatever the machine's load.
        #expect(try await me.call(RemindCommand(message: "much later", delaySeconds: 3600)).pending == 1)
        #expect(try await me.call(StatusCommand()).pendingReminders == 1)
        let start = ContinuousClock.now
        _ = try await me.call(RemindCommand(message: "check the build", delaySeconds: 2))
        let first = try await me.call(RecvCommand(waitSeconds: 30)).messages.first
        #expect(first?.from == "reminder")
        #expect(first?.body.contains("check the build") == true)
        #expect(ContinuousClock.now - start >= .seconds(2), "not before its time")
        _ = try await me.call(RemindCommand(message: "at a time", atUnix: Date().timeIntervalSince1970 + 2))
        let second = try await me.call(RecvCommand(waitSeconds: 30)).messages.first
        #expect(second?.body.contains("at a time") == true)
        #expect(try await me.call(StatusCommand()).pendingReminders == 1, "only the far one is left")
        #expect(try await me.call(ReminderRollupCommand(sinceSecs: 3600)) == .init(attempts: 2, successes: 2, failures: 0))
    }

    @Test("bad timing, absurd numbers and long texts are refused with a reason; core writes nothing into the agent's dirs")
    func validation() async throws {
        let hive = try LiveHive()
        try await hive.start()
        let me = try hive.agent("manager")
        for (line, says) in [(#"{"cmd":"remind","message":"x"}"#, "exactly one of"),
                             (#"{"cmd":"remind","message":"x","delay_seconds":5,"at_unix":9999999999}"#, "not both"),
                             (#"{"cmd":"remind","message":"x","at_unix":1000}"#, "in the past"),
                             (#"{"cmd":"remind","message":"x","delay_seconds":99999999999}"#, "days ahead"),
                             (#"{"cmd":"remind","message":"x","delay_seconds":-3}"#, "0 or more"),
                             (#"{"cmd":"remind","message":"","delay_seconds":3}"#, "empty"),
                             // Once killed core: a trap converting the number for the error message.
                             (#"{"cmd":"remind","message":"x","at_unix":-1e300}"#, "unix seconds"),
                             (#"{"cmd":"remind","message":"x","at_unix":1e300}"#, "unix seconds"),
                             (#"{"cmd":"remind","message":"x","delay_seconds":1e300}"#, "seconds")] {
            let r = try await me.raw(line)
            #expect(r["ok"] as? Bool == false)
            #expect((r["error"] as? String)?.contains(says) == true, "\(line): \(r["error"] ?? "")")
        }
        let long = String(repeating: "step by step. ", count: 600)
        let refused = try await me.raw(#"{"cmd":"remind","delay_seconds":0,"message":"\#(long)"}"#)
        #expect((refused["error"] as? String)?.contains("file_path") == true, "long texts are for hive mcp to save, as the agent")
        #expect(!FileManager.default.fileExists(atPath: hive.root.appending(path: "agents/manager/state/reminders").path))
        _ = try await hive.admin().call(ListCommand()) // core still answers
    }

    @Test("the cap and the token bucket refuse with which limit and when to retry; the operator lists and cancels")
    func limitsAndCancel() async throws {
        let hive = try LiveHive()
        try await hive.start(extra: ["--reminder-cap", "3", "--reminder-burst", "4", "--reminder-refill", "30"])
        let me = try hive.agent("manager")
        for i in 0..<3 { _ = try await me.call(RemindCommand(message: "r\(i)", delaySeconds: 600)) }
        let capped = try await me.raw(#"{"cmd":"remind","message":"r3","delay_seconds":600}"#)
        #expect((capped["error"] as? String)?.contains("3 reminders are already pending") == true)
        let listed = try await hive.admin().call(RemindersCommand(agent: "manager")).reminders
        #expect(listed.map(\.body) == ["r0", "r1", "r2"])
        #expect(try hive.cli(["cancel-reminder", "\(listed[0].id)"]).status == 0)
        #expect(try hive.cli(["cancel-reminder", "\(listed[0].id)"]).err.contains("is cancelled, not pending"))
        #expect(try hive.cli(["reminders", "--json"]).out.contains("\"r1\""))
        _ = try await me.call(RemindCommand(message: "r4", delaySeconds: 600)) // 4th token of the burst
        #expect(try await hive.admin().call(CancelReminderCommand(id: listed[1].id)).id == listed[1].id)
        let fast = try await me.raw(#"{"cmd":"remind","message":"r5","delay_seconds":600}"#)
        let error = fast["error"] as? String ?? ""
        #expect(error.contains("too fast") && error.contains("try again in"), "\(error)")
    }

    @Test("kill -9 during a large batch, then restart: every reminder delivered exactly once")
    func crashDuringBatch() async throws {
        let hive = try LiveHive()
        try await hive.start(extra: ["--reminder-cap", "5000", "--reminder-burst", "5000"])
        try await hive.spawn("iris")
        let iris = try hive.agent("iris")
        let due = Date().timeIntervalSince1970 + 3
        let total = 3000
        for i in 0..<total { _ = try await iris.call(RemindCommand(message: "r\(i)", atUnix: due)) }
        while Date().timeIntervalSince1970 < due { try await Task.sleep(for: .milliseconds(20)) }
        try await hive.eventually("delivery has started") {
            try await hive.agentRow("iris").map { $0.unread > 0 } ?? false
        }
        hive.kill9()
        let midway = try hive.sqlite("broker.sqlite", "SELECT COUNT(*) AS n FROM message WHERE sender = 'reminder'").first?["n"]
        try await hive.start()
        try await hive.eventually("all delivered", timeout: .seconds(60)) {
            try await hive.agentRow("iris")?.unread == total
        }
        let rows = try hive.sqlite("broker.sqlite", """
            SELECT COUNT(*) AS n, COUNT(DISTINCT body) AS bodies FROM message WHERE sender = 'reminder'
            """).first
        #expect(rows?["n"] == "\(total)" && rows?["bodies"] == "\(total)", "midway \(midway ?? "?")")
        let states = try hive.sqlite("broker.sqlite", "SELECT state, COUNT(*) AS n, COUNT(DISTINCT message_id) AS m FROM reminder GROUP BY state")
        #expect(states.count == 1 && states.first?["state"] == "delivered" && states.first?["m"] == "\(total)")
    }

    @Test("SIGTERM with thousands of reminders due: the core exits within seconds and counts stay consistent")
    func shutdownUnderLoad() async throws {
        let hive = try LiveHive()
        try await hive.start(extra: ["--reminder-cap", "5000", "--reminder-burst", "5000"])
        try await hive.spawn("iris")
        let iris = try hive.agent("iris")
        let due = Date().timeIntervalSince1970 + 3
        for i in 0..<4000 { _ = try await iris.call(RemindCommand(message: "r\(i)", atUnix: due)) }
        while Date().timeIntervalSince1970 < due + 0.05 { try await Task.sleep(for: .milliseconds(10)) }
        let start = ContinuousClock.now
        #expect(await hive.terminate(timeout: .seconds(10)) == 0)
        #expect(ContinuousClock.now - start < .seconds(5))
        let counts = try hive.sqlite("broker.sqlite", """
            SELECT (SELECT COUNT(*) FROM message WHERE sender = 'reminder') AS messages,
                   (SELECT COUNT(*) FROM reminder WHERE state = 'delivered') AS delivered,
                   (SELECT COUNT(*) FROM reminder WHERE state = 'pending') AS pending
            """).first
        #expect(counts?["messages"] == counts?["delivered"], "every delivered reminder has its message, no more")
        #expect((Int(counts?["delivered"] ?? "0") ?? 0) + (Int(counts?["pending"] ?? "0") ?? 0) == 4000)
    }
}
