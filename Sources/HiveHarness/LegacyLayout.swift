import Foundation

/// Moves harness files an older layout kept in the agent's `state/` into `harness/`, once.
///
/// The state dir is the agent's own; files the harness owns there (the Rust original's
/// `hyperhive-events.sqlite`, `hyperhive-turn-stats.sqlite`, `hyperhive-model`) are moved out with their
/// SQLite companions. A file whose new name is already taken is kept under `harness/legacy/` instead, so
/// nothing is overwritten or lost. Each move is appended to `harness/migrations.log`. Running it again
/// finds nothing to do.
public enum LegacyLayout {
    /// Old name in `state/` → new name in `harness/`.
    static let moves: [(from: String, to: String)] = [
        ("hyperhive-events.sqlite", "events.sqlite"),
        ("hyperhive-turn-stats.sqlite", "turn-stats.sqlite"),
        ("hyperhive-model", "model"),
        ("events.sqlite", "events.sqlite"),
        ("turn-stats.sqlite", "turn-stats.sqlite"),
    ]

    /// Performs the moves and returns one line per file moved.
    @discardableResult
    public static func migrate(stateDir: String, harnessDir: String, now: Date = Date()) throws -> [String] {
        let fm = FileManager.default
        var done: [String] = []
        for (from, to) in moves {
            let source = stateDir + "/" + from
            guard fm.fileExists(atPath: source) else { continue }
            try fm.createDirectory(atPath: harnessDir, withIntermediateDirectories: true)
            var target = harnessDir + "/" + to
            if fm.fileExists(atPath: target) {
                try fm.createDirectory(atPath: harnessDir + "/legacy", withIntermediateDirectories: true)
                target = harnessDir + "/legacy/" + from
            }
            // A database moves with its WAL and shared-memory files, or its last commits are lost.
            for suffix in ["", "-wal", "-shm"] where fm.fileExists(atPath: source + suffix) {
                try fm.moveItem(atPath: source + suffix, toPath: target + suffix)
            }
            done.append("\(ISO8601DateFormatter().string(from: now)) moved \(source) to \(target)")
        }
        if !done.isEmpty {
            let log = harnessDir + "/migrations.log"
            if !fm.fileExists(atPath: log) { _ = fm.createFile(atPath: log, contents: nil) }
            let handle = try FileHandle(forWritingTo: URL(filePath: log))
            handle.seekToEndOfFile()
            handle.write(Data((done.joined(separator: "\n") + "\n").utf8))
            try handle.close()
        }
        return done
    }
}
