import Foundation

/// A failure of the core daemon, with a message for the operator.
public struct CoreError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
