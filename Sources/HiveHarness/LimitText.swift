import Foundation

/// What an error result's text means for the turn loop.
public enum ErrorClass: Sendable, Equatable {
    /// A plan or usage limit: park until `resetsAt` (unix seconds), or re-probe later when unknown.
    case usageLimit(resetsAt: Double?)
    /// Overload or server-side throttling: retry soon.
    case transient
    /// The context no longer fits: compact, then retry.
    case promptTooLong
    /// Claude is not logged in (or the key is bad): a person has to act.
    case needsLogin
    /// No credit left, or a spending cap of $0: the operator has to act; retrying only burns requests.
    case billing
    /// Anything else: a failed turn.
    case other
}

/// Reads the error texts the Claude CLI puts in `result` (see shared/reference/claude-cli.md §2).
/// Only called for results with `is_error: true`, since agents write about "usage limits" too.
public enum LimitText {
    /// Classifies an error text; `now` anchors "resets 3pm"-style times.
    public static func classify(_ text: String, apiStatus: Int? = nil, now: Date = Date()) -> ErrorClass {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let lower = t.lowercased()
        if lower.hasPrefix("prompt is too long") { return .promptTooLong }
        // Server-side throttling and overload say so, and are not the plan's limit.
        let transientMarks = ["not your usage limit", "request rejected (429)", "api error: rate limit reached", "overloaded",
                              "api error: 529", "api error: 500", "api error: 502", "api error: 503", "api error: 504",
                              "server_error", "internal server error", "connection error", "timed out", "econnreset", "stream idle timeout"]
        if transientMarks.contains(where: lower.contains) { return .transient }
        let billingMarks = ["credit balance is too low", "credit balance too low", "usage limit is set to $0", "spend limit is set to $0", "out of credits"]
        if billingMarks.contains(where: lower.contains) { return .billing }
        let loginMarks = ["not logged in", "invalid api key", "please run /login", "oauth token has expired", "authentication_failed"]
        if loginMarks.contains(where: lower.contains) { return .needsLogin }
        let limitMarks = ["usage limit reached", "limit reached", "you've hit your", "you have hit your", "limit will reset",
                          "session limit", "weekly limit", "5-hour limit", "out of extra usage", "monthly usage limit", "monthly spend limit", "rate_limit_error", "would exceed your account's rate limit"]
        if limitMarks.contains(where: lower.contains) || apiStatus == 429 {
            return .usageLimit(resetsAt: resetTime(in: t, now: now))
        }
        return .other
    }

    /// The reset time a limit text gives: `…|<epoch>`, or `reset(s) [at] <time> (<zone>)`, or
    /// `resets <Mon> <D>, <time> (<zone>)`. Times in the past roll to the next day (or year).
    public static func resetTime(in text: String, now: Date = Date()) -> Double? {
        if let bar = text.lastIndex(of: "|"), let epoch = Double(text[text.index(after: bar)...].trimmingCharacters(in: .whitespaces)),
           epoch > 1_000_000_000 {
            return epoch > 1_000_000_000_000 ? epoch / 1000 : epoch
        }
        let pattern = #/(?i)resets?\s+(?:at\s+)?(?:(?<mon>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(?<day>\d{1,2}),?\s+(?:at\s+)?)?(?<hour>\d{1,2})(?::(?<min>\d{2}))?\s*(?<ampm>am|pm)?(?:\s*\((?<tz>[A-Za-z_]+(?:/[A-Za-z0-9_+-]+)*)\))?/#
        guard let m = text.firstMatch(of: pattern) else { return nil }
        guard var hour = Int(m.output.hour) else { return nil }
        let minute = m.output.min.flatMap { Int($0) } ?? 0
        if let ampm = m.output.ampm?.lowercased() {
            guard (1...12).contains(hour) else { return nil }
            if ampm == "pm", hour != 12 { hour += 12 }
            if ampm == "am", hour == 12 { hour = 0 }
        }
        guard (0...23).contains(hour), (0...59).contains(minute) else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        // A time without a zone is the host's: the CLI prints resets in the local zone of the machine it runs on.
        calendar.timeZone = m.output.tz.flatMap { TimeZone(identifier: String($0)) } ?? .current
        var parts = calendar.dateComponents([.year, .month, .day], from: now)
        parts.hour = hour
        parts.minute = minute
        parts.second = 0
        if let mon = m.output.mon, let day = m.output.day.flatMap({ Int($0) }) {
            let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
            parts.month = (months.firstIndex(of: mon.lowercased()) ?? 0) + 1
            parts.day = day
            guard var date = calendar.date(from: parts) else { return nil }
            if date < now { date = calendar.date(byAdding: .year, value: 1, to: date) ?? date }
            return date.timeIntervalSince1970
        }
        guard var date = calendar.date(from: parts) else { return nil }
        if date <= now { date = calendar.date(byAdding: .day, value: 1, to: date) ?? date }
        return date.timeIntervalSince1970
    }
}
