import HiveWire

/// The text a turn starts from: who wrote, what, and what the harness knows about it.
public enum WakePrompt {
    public static func build(_ m: MessageView, unread: Int) -> String {
        var lines: [String] = []
        var head = "New message \(m.id) from \(m.from)"
        if let reply = m.inReplyTo { head += ", replying to message \(reply)" }
        lines.append(head + ":")
        if m.broadcast { lines.append("(This was a broadcast and may not need any action from you.)") }
        if m.redelivered { lines.append("(Delivered before without a finished turn (a restart or a failed turn) — it may already be partly handled; check before acting twice.)") }
        lines.append("")
        lines.append(m.body)
        lines.append("")
        if unread > 0 {
            lines.append("\(unread) more message\(unread == 1 ? " is" : "s are") waiting; they will come as the next turns (or use the recv tool).")
        }
        if m.from != "system" && m.from != "reminder" {
            lines.append("To answer, use the send tool with to: \"\(m.from)\" and in_reply_to: \(m.id).")
        }
        return lines.joined(separator: "\n")
    }

    /// The first line of a fresh session: where the agent's own notes are.
    public static func freshSessionHandoff(stateDir: String) -> String {
        "(A fresh session started: the previous conversation is not loaded. Your durable notes are in \(stateDir); read them before continuing earlier work.)"
    }
}
