import Foundation

/// An optional that is written as `null` when absent instead of being left out, so every reply and
/// event keeps one shape whatever it holds (readers such as the dashboard's script and `jq` filters
/// never meet a missing key). Decoding takes a missing key and `null` alike.
///
/// Swift's synthesized `Encodable` skips nil optionals (`encodeIfPresent`); a hand-written encoder per
/// type was the other way, and there were eight of them.
@propertyWrapper
public struct Nullable<Value: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var wrappedValue: Value?
    public init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        wrappedValue = c.decodeNil() ? nil : try c.decode(Value.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        if let wrappedValue { try c.encode(wrappedValue) } else { try c.encodeNil() }
    }
}

extension KeyedDecodingContainer {
    /// A missing key is a nil ``Nullable``, as it is for a plain optional.
    public func decode<V>(_ type: Nullable<V>.Type, forKey key: Key) throws -> Nullable<V> {
        try decodeIfPresent(type, forKey: key) ?? Nullable(wrappedValue: nil)
    }
}
