import Foundation
import HiveWire
import Synchronization

/// A usage limit belongs to a credential, not to the agent that hit it: when one agent reports that its
/// credential's window is exhausted, every agent on that credential waits for the same reset instead of
/// each burning a request to find out. A model-scoped window (`seven_day_opus`, ...) holds only the
/// agents whose model is of that family. Core enforces it by handing those agents no message until then.
final class CredentialLimits: Sendable {
    struct Hold: Sendable, Equatable {
        var until: Double
        var window: String?
        /// The model family a model-scoped window names (`opus`), or nil for the whole credential.
        var family: String?
        var reportedBy: AgentName
    }

    private let holds = Mutex<[String: [Hold]]>([:])
    private let clock: @Sendable () -> Double

    init(clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) { self.clock = clock }

    /// The model family a window is scoped to, if any: `seven_day_opus` → `opus`.
    static func family(of window: String?) -> String? {
        guard let window else { return nil }
        return ["opus", "sonnet", "haiku"].first { window.contains($0) }
    }

    func record(credential: String, until: Double, window: String?, by agent: AgentName) {
        let now = clock()
        guard until > now else { return }
        let hold = Hold(until: min(until, now + 7 * 86_400), window: window, family: Self.family(of: window), reportedBy: agent)
        holds.withLock { h in
            var list = (h[credential] ?? []).filter { $0.until > now && !($0.family == hold.family && $0.until <= hold.until) }
            list.append(hold)
            h[credential] = list
        }
    }

    /// Drops the holds `agent` reported: it says it is no longer limited (a turn of it ran, or it stopped
    /// waiting), so the others need not wait on its word.
    func release(by agent: AgentName) {
        holds.withLock { h in for (k, list) in h { h[k] = list.filter { $0.reportedBy != agent } } }
    }

    /// The hold that keeps an agent on `credential` running `model` waiting, if any (the latest to end).
    /// Asked on every `recv` and for every row of `list` (five times a second for the dashboard): with no
    /// hold in force, neither the credential nor the model (a file read) is looked up.
    func hold(credential: () -> String, model: () -> String) -> Hold? {
        let now = clock()
        let live = holds.withLock { h in h.values.contains { $0.contains { $0.until > now } } }
        guard live else { return nil }
        let credential = credential(), model = model().lowercased()
        return holds.withLock { h in
            (h[credential] ?? []).filter { $0.until > now && ($0.family.map { model.contains($0) } ?? true) }
                .max { $0.until < $1.until }
        }
    }
}
