import Foundation

/// Long reminder texts: saved by `hive mcp` (the agent's own process) under `reminders/` in its working
/// directory, the agent's state dir; the reminder carries the path and the text's beginning.
enum ReminderText {
    /// Longer texts go to a file (core takes at most 3000 bytes).
    static let inlineBytes = 2000

    static func save(_ text: String) throws -> String {
        let dir = URL(filePath: FileManager.default.currentDirectoryPath).appending(path: "reminders")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let file = dir.appending(path: "reminder-\(Int(Date().timeIntervalSince1970))-\(UUID().uuidString.prefix(8)).md")
        try Data(text.utf8).write(to: file, options: .withoutOverwriting)
        return file.path
    }

    static func pointer(to path: String, text: String) -> String {
        var start = String(text.prefix(300))
        while start.utf8.count > 600 { start.removeLast() }
        return "The full text (\(text.utf8.count) bytes) is in \(path). It begins:\n\(start)…"
    }
}
