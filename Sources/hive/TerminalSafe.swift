import Foundation

/// Every line `hive` prints goes through this `print`, which shadows the standard one in this module:
/// agents write message bodies, states, reminder texts, question texts and log lines, and a terminal
/// escape among them must reach the operator's terminal as text, never as a command (a title change, a
/// hidden line, a fake prompt). Control characters other than newline and tab are shown as `\u{1B}`.
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    Swift.print(TerminalSafe.clean(items.map { "\($0)" }.joined(separator: separator)), terminator: terminator)
}

enum TerminalSafe {
    static func clean(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isUnsafe) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if isUnsafe(scalar) {
                out.append(contentsOf: "\\u{\(String(scalar.value, radix: 16, uppercase: true))}".unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    /// C0 controls but newline and tab, DEL, C1 controls, and the bidirectional overrides that reorder
    /// what a line appears to say.
    static func isUnsafe(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x0A, 0x09: return false
        case 0x00...0x1F, 0x7F...0x9F, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }
}
