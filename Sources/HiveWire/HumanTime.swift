/// Spans of time as people read them in messages and CLI output ("45 s", "12 min", "3 h", "2 days").
public enum HumanTime {
    public static func span(seconds: Int) -> String {
        let s = max(0, seconds)
        return s < 120 ? "\(s) s" : s < 7200 ? "\(s / 60) min" : s < 172_800 ? "\(s / 3600) h" : "\(s / 86400) days"
    }
}
