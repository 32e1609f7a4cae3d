import Foundation
import HiveBroker
import HiveWire
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Range checks for numeric request fields, with messages that name the field.
enum Validate {
    /// A positive count; nil means `default`, values above `cap` are clamped to it.
    static func count(_ value: Int?, field: String, default def: Int, cap: Int) throws(RequestError) -> Int {
        guard let value else { return def }
        guard value >= 1 else { throw RequestError("field '\(field)' must be at least 1") }
        return min(value, cap)
    }

    /// A non-negative number of seconds; nil means zero, values above `cap` are clamped to it.
    static func seconds(_ value: Double?, field: String, cap: Double) throws(RequestError) -> Duration {
        guard let value else { return .zero }
        guard value.isFinite, value >= 0 else { throw RequestError("field '\(field)' must be a number of seconds, 0 or more") }
        return .milliseconds(Int64(min(value, cap) * 1000))
    }
}
