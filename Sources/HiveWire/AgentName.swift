import Foundation

/// A validated agent name: a short lowercase identifier that is safe to use as a path component.
///
/// Every name that crosses a boundary (a socket line, a CLI argument, a directory listing) becomes an
/// `AgentName` first, so nothing downstream can be handed `..`, `/` or an empty string.
public struct AgentName: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public let rawValue: String

    /// Names that have a meaning of their own in the hive and can never be spawned as agents.
    public static let reserved: Set<String> = ["operator", "manager", "reminder", "system", "hive", "*"]

    /// The manager agent, registered on first boot.
    public static let manager = AgentName(unchecked: "manager")

    /// Validates `raw` as an agent name (`^[a-z][a-z0-9-]{0,30}$`). Reserved names are accepted here
    /// (`manager` is a real agent); use ``spawnable(_:)`` where a new agent is created.
    public init(_ raw: String) throws(NameError) {
        guard !raw.isEmpty else { throw .empty }
        guard raw.utf8.count <= 31 else { throw .tooLong(raw) }
        let bytes = Array(raw.utf8)
        guard let first = bytes.first, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first) else {
            throw .badCharacters(raw)
        }
        for b in bytes.dropFirst() {
            let ok = (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b)
                || b == UInt8(ascii: "-")
            guard ok else { throw .badCharacters(raw) }
        }
        self.rawValue = raw
    }

    private init(unchecked: String) { self.rawValue = unchecked }

    /// Validates `raw` as the name of a new agent: a valid name that is not reserved.
    public static func spawnable(_ raw: String) throws(NameError) -> AgentName {
        let name = try AgentName(raw)
        guard !reserved.contains(raw) else { throw .reserved(raw) }
        return name
    }

    public var description: String { rawValue }
    public static func < (a: AgentName, b: AgentName) -> Bool { a.rawValue < b.rawValue }

    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(raw) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

/// Why a string is not an acceptable agent name; the description tells the user what to type instead.
public enum NameError: Error, Equatable, CustomStringConvertible, Sendable {
    case empty
    case tooLong(String)
    case badCharacters(String)
    case reserved(String)

    public var description: String {
        switch self {
        case .empty:
            return "agent name is empty; use a short lowercase identifier such as 'iris'"
        case .tooLong(let s):
            return "agent name '\(s.prefix(40))…' is longer than 31 characters"
        case .badCharacters(let s):
            return "'\(s)' is not a valid agent name: use a lowercase letter followed by lowercase letters, digits or '-' (at most 31 characters), e.g. 'iris' or 'build-2'"
        case .reserved(let s):
            return "'\(s)' is reserved in the hive and cannot be spawned as an agent"
        }
    }
}
