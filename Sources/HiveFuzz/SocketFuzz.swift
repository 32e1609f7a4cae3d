import Foundation
import HiveHost
import HiveWire
#if canImport(Glibc)
import Glibc
#endif

/// A fuzzer for the hive's line sockets (agents', the manager's, the admin socket, the web socket),
/// used by the adversary tests and by `hive-bench --fuzz`. Lines are random and mutated JSON drawn from
/// every command name and every field the wire knows, with values of every type and edge (huge, tiny,
/// negative, non-finite-looking, deep, long, control characters), byte-level mutations of valid lines,
/// raw bytes and lines over the line limit. It is seeded, so a failure can be replayed.
///
/// The one thing it holds back is a long blocking wait: `wait_seconds` stays near 0 (or invalid), so
/// 10,000 lines take seconds; what a wait does is tested elsewhere.
public struct SocketFuzz {
    public static let commands = [
        "send", "recv", "ack_turn", "requeue_inflight", "status", "recent", "whoami", "dead_letter", "report_state",
        "request_next_turn", "new_session", "remind", "reminder_rollup", "list", "spawn", "destroy", "start", "stop",
        "restart", "revive", "info", "reminders", "cancel_reminder", "inbox", "pending", "approve", "deny",
        "request_init_config", "request_apply_commit", "rebuild", "update", "logs", "forge_repos", "set_model",
        "turn_settings", "resume", "ask", "answer", "questions", "snapshot", "events", "read_file", "agent_config",
    ]
    public static let fields = [
        "after", "agent", "all", "all_inflight", "answer", "at_unix", "body", "choices", "cli_version", "commit_ref",
        "delay_seconds", "description", "detail", "id", "ids", "in_reply_to", "keep", "kind", "limit", "limit_window",
        "lines", "max", "message", "model", "multi", "name", "note", "options", "purge", "question", "rate_limited_until",
        "reason", "rel_path", "since_secs", "state", "to", "ttl_seconds", "wait_seconds",
    ]

    static let words = ["", "iris", "bob", "manager", "operator", "*", "system", "idle", "rate_limited", "destroyed",
                        "../etc/passwd", "/etc/shadow", "a/../../b", "Iris", "x\u{0}y", "\u{1B}[2J", "\u{202E}txet",
                        "five_hour", "seven_day", "opus", "claude-sonnet-4", "deadbeef", "0123456789abcdef0123"]

    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// SplitMix64: small, fast, and the same sequence on every machine.
    private mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    private mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(1, n))) }
    private mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    /// One line, without its newline (and never containing one), never blank.
    public mutating func line() -> Data {
        var bytes: [UInt8]
        switch below(100) {
        case 0..<40: bytes = Array(structured().utf8)
        case 40..<62: bytes = mutate(Array(structured().utf8))
        case 62..<70: bytes = (0..<below(300)).map { _ in UInt8(truncatingIfNeeded: next()) }
        case 70..<80: bytes = Array(confused().utf8)
        case 80..<95: bytes = Array(big().utf8)
        default: bytes = Array(#"{"cmd":"send","to":"manager","body":""#.utf8) + Array(repeating: 0x61, count: WireLimits.maxLineBytes + below(4096)) + Array(#""}"#.utf8)
        }
        bytes.removeAll { $0 == 0x0A }
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { bytes = Array("{}".utf8) }
        return Data(bytes)
    }

    private mutating func structured() -> String {
        var parts = ["\"cmd\":\(below(10) == 0 ? value(depth: 1) : quoted(pick(Self.commands)))"]
        for _ in 0..<below(6) {
            let field = below(12) == 0 ? "x\(below(100))" : pick(Self.fields)
            parts.append("\(quoted(field)):\(field == "wait_seconds" ? pick(["0", "0.05", "-1", "1e300", "\"5\"", "null"]) : value(depth: 0))")
        }
        return "{" + parts.joined(separator: ",") + "}"
    }

    private mutating func value(depth: Int) -> String {
        switch below(depth > 3 ? 6 : 9) {
        case 0: return pick(["0", "1", "-1", "2", "7", "42", "9223372036854775807", "-9223372036854775808", "18446744073709551616",
                             "1e300", "-1e300", "1e-300", "0.5", "-0.0", "9007199254740993", "1e11", "100000000000", "3.5e9"])
        case 1, 2:
            switch below(25) {
            case 23: return quoted(String(repeating: "é", count: below(3000)))
            case 24: return quoted(String(repeating: "x", count: below(5000)))
            case let i: return quoted(Self.words[i])
            }
        case 3: return pick(["true", "false", "null"])
        case 4: return "[" + (0..<below(5)).map { _ in value(depth: depth + 1) }.joined(separator: ",") + "]"
        case 5: return "{" + (0..<below(4)).map { _ in "\(quoted(pick(Self.fields))):\(value(depth: depth + 1))" }.joined(separator: ",") + "}"
        case 6: return "[" + (0..<below(40)).map { _ in "\(Int64(bitPattern: next()) % 100_000)" }.joined(separator: ",") + "]"
        case 7: return "\(Int64(bitPattern: next()) >> below(64))"
        default: return "\(Double(bitPattern: next() & 0x7FEF_FFFF_FFFF_FFFF) * (below(2) == 0 ? 1 : -1))"
        }
    }

    private mutating func confused() -> String {
        pick([
            "[" + structured() + "]", "\"" + pick(Self.commands) + "\"", "null", "42", "{\"cmd\":null}", "{\"cmd\":[\"send\"]}",
            "{\"cmd\":{\"cmd\":\"send\"}}", "{\"cmd\":\"send\",\"cmd\":\"spawn\",\"name\":\"x\"}", "{", "}", "{\"cmd\":\"send\"",
            "{\"cmd\":\"\(pick(Self.commands))\",\"to\":\"iris\",\"body\":\"a\\ud800b\"}", "\u{FEFF}{\"cmd\":\"whoami\"}",
        ])
    }

    private mutating func big() -> String {
        switch below(4) {
        case 0: return "{\"cmd\":\"ack_turn\",\"ids\":[" + (0..<(1000 + below(6000))).map { "\($0)" }.joined(separator: ",") + "]}"
        case 1: return String(repeating: "[", count: 200 + below(2000)) + String(repeating: "]", count: below(2000))
        case 2: return "{\"cmd\":\"\(pick(Self.commands))\",\"body\":\"\(String(repeating: "y", count: 4000 + below(50_000)))\"}"
        default: return "{\"cmd\":\"remind\",\"message\":\"\(String(repeating: "m", count: 1000 + below(8000)))\",\"delay_seconds\":\(value(depth: 0))}"
        }
    }

    private mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        var b = input
        for _ in 0..<(1 + below(4)) where !b.isEmpty {
            let i = below(b.count)
            switch below(5) {
            case 0: b[i] ^= UInt8(truncatingIfNeeded: 1 << below(8))
            case 1: b.remove(at: i)
            case 2: b.insert(UInt8(truncatingIfNeeded: next()), at: i)
            case 3: b.insert(contentsOf: b[i..<min(b.count, i + below(64))], at: i)
            default: b[i] = pick(Array("{}[]\",:\\0-e.".utf8))
            }
        }
        return b
    }

    /// A JSON string literal (written here: JSONEncoder made the generator slower than core).
    private func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// Sends fuzz lines to one socket, one at a time, each followed by reading its answer (or the
/// connection's end, after which it connects again).
public struct FuzzRun: Sendable, CustomStringConvertible {
    public var sent = 0
    public var answered = 0
    /// Connections the far end closed (a line over the limit ends its connection).
    public var reconnects = 0
    /// Lines that got no answer within the timeout.
    public var unanswered = 0

    public init() {}
    public var description: String { "\(sent) sent, \(answered) answered, \(reconnects) reconnects, \(unanswered) unanswered" }

    /// `count` lines from `seed`, each with its newline (made before a run, so the run times core alone).
    public static func lines(_ count: Int, seed: UInt64) -> [Data] {
        var fuzz = SocketFuzz(seed: seed)
        return (0..<count).map { _ in var line = fuzz.line(); line.append(0x0A); return line }
    }

    public static func run(socket path: String, lines: [Data], answerTimeout: Duration = .seconds(10)) throws -> FuzzRun {
        var run = FuzzRun()
        var fd = try connect(path)
        defer { close(fd) }
        var pending = [UInt8]()
        for line in lines {
            run.sent += 1
            guard UnixSocket.writeAll(fd, line) else {
                run.reconnects += 1
                close(fd); fd = try connect(path); pending = []
                continue
            }
            switch readLine(fd, &pending, timeout: answerTimeout) {
            case .line: run.answered += 1
            case .closed:
                run.reconnects += 1
                close(fd); fd = try connect(path); pending = []
            case .timedOut:
                run.unanswered += 1
                close(fd); fd = try connect(path); pending = []
            }
        }
        return run
    }

    public enum Read: Sendable { case line, closed, timedOut }

    public static func readLine(_ fd: Int32, _ pending: inout [UInt8], timeout: Duration) -> Read {
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            if let nl = pending.firstIndex(of: 0x0A) {
                pending.removeSubrange(...nl)
                return .line
            }
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return .timedOut }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ms = Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000) + 1
            guard poll(&p, 1, ms) > 0 else { continue }
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { return .closed }
            pending += buffer[..<n]
        }
    }

    public static func connect(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0, UnixSocket.withAddress(path, { Glibc.connect(fd, $0, $1) }) == 0 else {
            if fd >= 0 { close(fd) }
            throw FuzzError("cannot connect to \(path): \(String(cString: strerror(errno)))")
        }
        return fd
    }
}

public struct FuzzError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
