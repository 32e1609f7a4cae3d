import Foundation
import HiveClient
import HiveWire
import Testing

/// The wire as it is: a fixed conversation on each socket (an agent's, the manager's, the admin and the
/// web socket), every request and its reply, checked against `Golden/<socket>.txt`. It proves a change
/// inside core left the JSON the same (and so that a harness of the previous release still talks to a
/// new core). Times and the test's own temp paths are replaced by placeholders; everything else must
/// match byte for byte. After an intended change of the wire, run with HIVE_GOLDEN_RECORD=1 and review
/// the diff of the golden files like code.
@Suite("Golden wire samples", .serialized, .timeLimit(.minutes(2)))
struct GoldenWireTests {
    static let dir = URL(filePath: #filePath).deletingLastPathComponent().appending(path: "Golden")

    /// Keys whose values are wall-clock times (or depend on them, like the dashboard feed's sequence,
    /// which advances with its polls).
    static let timeKeys: Set<String> = ["seq", "created_at", "sent_at", "delivered_at", "acked_at", "due_at", "fired_at", "expires_at",
                                        "answered_at", "resolved_at", "at", "at_unix", "since", "rate_limited_until", "now",
                                        "last_commit_at", "started_at", "cancelled_at", "oldest_pending_at"]

    static func normalize(_ value: Any, key: String?, dir: String) -> Any {
        if let key, timeKeys.contains(key), value is NSNumber { return "<time>" }
        switch value {
        case let object as [String: Any]:
            return Dictionary(uniqueKeysWithValues: object.map { ($0.key, normalize($0.value, key: $0.key, dir: dir)) })
        case let array as [Any]:
            return array.map { normalize($0, key: nil, dir: dir) }
        case let string as String:
            // Unix times written into texts ("expires at unix 1796…") too.
            return string.replacingOccurrences(of: dir, with: "<dir>")
                .replacingOccurrences(of: #"\b1[0-9]{9}(\.[0-9]+)?\b"#, with: "<time>", options: .regularExpression)
        default:
            return value
        }
    }

    /// Sends each line on `socket` and renders the exchange: `→ request` then `← reply` (keys sorted).
    static func converse(_ socket: String, _ lines: [String], dir: String) async throws -> String {
        let connection = try HiveConnection(path: socket)
        var out = ""
        for line in lines {
            let reply = try await connection.raw(line)
            let normalized = normalize(reply, key: nil, dir: dir)
            let data = try JSONSerialization.data(withJSONObject: normalized, options: [.sortedKeys, .withoutEscapingSlashes])
            out += "→ \(line)\n← \(String(decoding: data, as: UTF8.self))\n"
        }
        return out
    }

    static func check(_ name: String, _ text: String) throws {
        let file = dir.appending(path: "\(name).txt")
        if ProcessInfo.processInfo.environment["HIVE_GOLDEN_RECORD"] == "1" {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: file)
            return
        }
        let golden = try String(contentsOf: file, encoding: .utf8)
        let (want, got) = (golden.split(separator: "\n", omittingEmptySubsequences: false), text.split(separator: "\n", omittingEmptySubsequences: false))
        for (i, line) in want.enumerated() where i >= got.count || got[i] != line {
            Issue.record("\(name).txt line \(i + 1) differs:\n  golden: \(line)\n  now:    \(i < got.count ? got[i] : "(missing)")")
            return
        }
        #expect(got.count == want.count, "\(name): \(got.count) lines now, \(want.count) in the golden file")
    }

    @Test("every socket's requests and replies are as recorded (Golden/*.txt)")
    func wire() async throws {
        let hive = try LiveHive()
        try await hive.start()
        let dir = hive.dir.path
        _ = try await hive.spawn("iris")
        _ = try await hive.spawn("bob")

        try Self.check("agent", try await Self.converse(hive.agentSocket("iris"), [
            #"{"cmd":"whoami"}"#,
            #"{"cmd":"status"}"#,
            #"{"cmd":"send","to":"bob","body":"hello bob"}"#,
            #"{"cmd":"send","to":"nobody","body":"x"}"#,
            #"{"cmd":"send","to":"bob","body":""}"#,
            #"{"cmd":"recv","wait_seconds":0}"#,
            #"{"cmd":"recent","limit":5}"#,
            #"{"cmd":"report_state","state":"idle","detail":"waiting"}"#,
            #"{"cmd":"report_state","state":"destroyed"}"#,
            #"{"cmd":"remind","message":"look again","delay_seconds":3600}"#,
            #"{"cmd":"remind","message":"x","at_unix":-1e300}"#,
            #"{"cmd":"reminder_rollup","since_secs":3600}"#,
            #"{"cmd":"ask","question":"which one?","options":["a","b"],"to":"bob"}"#,
            #"{"cmd":"questions"}"#,
            #"{"cmd":"new_session"}"#,
            #"{"cmd":"turn_settings"}"#,
            #"{"cmd":"ack_turn","ids":[999]}"#,
            #"{"cmd":"requeue_inflight"}"#,
            #"{"cmd":"dead_letter","ids":[999],"reason":"x"}"#,
            #"{"cmd":"request_init_config","name":"eve"}"#,
            #"{"cmd":"no_such_command"}"#,
            #"{"cmd":"send","to":"bob""#,
            #"{"cmd":"send","to":"bob","body":"x","extra":1}"#,
        ], dir: dir))

        try Self.check("bob", try await Self.converse(hive.agentSocket("bob"), [
            #"{"cmd":"recv","wait_seconds":0,"max":5}"#,
            #"{"cmd":"questions"}"#,
            #"{"cmd":"answer","id":1,"choices":["b"]}"#,
        ], dir: dir))

        // The answer's outcome reaches iris through the questions' outbox, in the background: let it land
        // before anything that counts or lists messages.
        try await hive.eventually("the answer reached iris") { try await hive.agentRow("iris")?.unread == 1 }

        try Self.check("manager", try await Self.converse(hive.agentSocket("manager"), [
            #"{"cmd":"whoami"}"#,
            #"{"cmd":"request_init_config","name":"carol","description":"tests things"}"#,
            #"{"cmd":"request_apply_commit","agent":"carol","commit_ref":"HEAD"}"#,
            #"{"cmd":"recv","wait_seconds":0,"max":5}"#,
        ], dir: dir))

        // The samples' own connections are closed, but core notices a close a moment later: `list` would show
        // whoever it has not noticed yet as running.
        try await hive.eventually("the sample connections are seen closed") {
            try await hive.admin().call(ListCommand()).agents.allSatisfy { $0.state == .stopped }
        }
        try Self.check("admin", try await Self.converse(hive.adminSocket, [
            #"{"cmd":"list"}"#,
            #"{"cmd":"inbox"}"#,
            #"{"cmd":"pending"}"#,
            #"{"cmd":"reminders","agent":"iris"}"#,
            #"{"cmd":"send","to":"iris","body":"from the operator"}"#,
            #"{"cmd":"spawn","name":"../x"}"#,
            #"{"cmd":"destroy","name":"manager"}"#,
            #"{"cmd":"logs","name":"iris","lines":5}"#,
            #"{"cmd":"set_model","agent":"iris","model":"opus"}"#,
            #"{"cmd":"set_model","agent":"iris","model":""}"#,
            #"{"cmd":"deny","id":1,"note":"not now"}"#,
        ], dir: dir))

        try Self.check("web", try await Self.converse(hive.runDir.appending(path: "web.sock").path, [
            // (The feed's events interleave by poll timing; what each event looks like is the dashboard's tests' part.)
            #"{"cmd":"events","after":1000000,"wait_seconds":0}"#,
            #"{"cmd":"read_file","agent":"iris","rel_path":"../../etc/passwd"}"#,
            #"{"cmd":"agent_config","agent":"iris"}"#,
            #"{"cmd":"spawn","name":"x"}"#,
        ], dir: dir))
    }
}
