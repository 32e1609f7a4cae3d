import Foundation
import HiveWire

public enum QuestionEvent: Sendable, Equatable {
    case answer
    case expire
}

/// The question state machine and its rules, without I/O.
public enum QuestionLifecycle {
    /// What `event` does to a question in `state` (answering twice, or an expired one, is refused).
    public static func apply(_ event: QuestionEvent, to state: QuestionState) -> Transition<QuestionState> {
        switch (state, event) {
        case (.open, .answer): return .moved(to: .answered)
        case (.open, .expire): return .moved(to: .expired)
        default: return .refused("is \(state.rawValue)")
        }
    }

    /// A question as asked, checked and normalised.
    public struct Asked: Sendable, Equatable {
        public var question: String
        public var options: [String]
        public var multi: Bool
        public var ttl: Double
    }

    /// Checks an `ask` request: the question's size, 0 to 10 distinct non-empty options, a sane TTL.
    public static func check(_ c: AskCommand) throws(RequestError) -> Asked {
        let question = c.question.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !question.isEmpty, question.utf8.count <= QuestionLimits.maxQuestionBytes else {
            throw RequestError("field 'question' must be 1 to \(QuestionLimits.maxQuestionBytes) bytes")
        }
        let options = (c.options ?? []).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard options.count <= QuestionLimits.maxOptions else {
            throw RequestError("field 'options' takes at most \(QuestionLimits.maxOptions) choices, not \(options.count)")
        }
        guard options.allSatisfy({ !$0.isEmpty && $0.utf8.count <= QuestionLimits.maxOptionBytes }) else {
            throw RequestError("field 'options': each choice must be 1 to \(QuestionLimits.maxOptionBytes) bytes")
        }
        guard Set(options).count == options.count else { throw RequestError("field 'options' lists a choice twice") }
        let multi = c.multi ?? false
        if multi, options.count < 2 { throw RequestError("field 'multi' needs at least two options to choose from") }
        let ttl = c.ttlSeconds ?? QuestionLimits.defaultTTL
        guard ttl.isFinite, ttl >= QuestionLimits.minTTL, ttl <= QuestionLimits.maxTTL else {
            throw RequestError("field 'ttl_seconds' must be \(Int(QuestionLimits.minTTL)) to \(Int(QuestionLimits.maxTTL)) seconds")
        }
        return Asked(question: question, options: options, multi: multi, ttl: ttl)
    }

    /// Who a question goes to: the operator or one other agent.
    public static func recipient(asker: AgentName, to: Recipient) throws -> String {
        switch to {
        case .operator: return "operator"
        case .agent(let peer):
            guard peer != asker else { throw RequestError("ask someone else: a question to yourself would never be answered") }
            return peer.rawValue
        case .broadcast: throw RequestError("a question goes to 'operator' or one agent, not '*'")
        }
    }

    /// Whether `by` may answer `q` at `now`, and the answer as stored (see ``checkAnswer(_:choices:answer:)``).
    /// Only the party asked may answer: an agent learns nothing about questions not asked of it (the operator
    /// sees them all anyway). A question past its time but not yet swept is expired, whatever the sweeper has
    /// managed so far.
    public static func answering(_ q: QuestionView, by: Sender, now: Double, choices: [String]?, answer: String?) throws -> (choices: [String], answer: String?) {
        guard q.to == by.description else {
            throw by == .operator ? BrokerError.notYourQuestion(q.id, to: q.to) : BrokerError.noSuchQuestion(q.id)
        }
        let effective = q.state == .open && q.expiresAt <= now ? QuestionState.expired : q.state
        guard apply(.answer, to: effective).next != nil else { throw BrokerError.questionNotOpen(q.id, state: effective.rawValue) }
        return try checkAnswer(q, choices: choices, answer: answer)
    }

    /// Checks an answer against the question: with options, one chosen (several if `multi`), each one of
    /// them; without, a non-empty text. Returns the choices in the question's order and the trimmed text.
    public static func checkAnswer(_ q: QuestionView, choices: [String]?, answer: String?) throws(RequestError) -> (choices: [String], answer: String?) {
        let text = answer?.trimmingCharacters(in: .whitespacesAndNewlines)
        let note = (text?.isEmpty ?? true) ? nil : text
        if let note, note.utf8.count > QuestionLimits.maxAnswerBytes {
            throw RequestError("field 'answer' must be at most \(QuestionLimits.maxAnswerBytes) bytes")
        }
        let picked = choices ?? []
        if q.options.isEmpty {
            guard picked.isEmpty else { throw RequestError("question \(q.id) offers no options; answer in text") }
            guard let note else { throw RequestError("question \(q.id) wants a text answer: give 'answer'") }
            return ([], note)
        }
        guard !picked.isEmpty else {
            throw RequestError("question \(q.id) offers options; choose \(q.multi ? "one or more" : "one") of: \(q.options.joined(separator: " | "))")
        }
        if let unknown = picked.first(where: { !q.options.contains($0) }) {
            throw RequestError("'\(unknown)' is not an option of question \(q.id); the options are: \(q.options.joined(separator: " | "))")
        }
        guard q.multi || Set(picked).count == 1 else { throw RequestError("question \(q.id) takes one choice, not \(picked.count)") }
        return (q.options.filter(picked.contains), note)
    }

    /// The message that carries an answer back to the asker.
    public static func answerBody(_ q: QuestionView) -> String {
        var parts: [String] = []
        if !q.choices.isEmpty { parts.append("chose: " + q.choices.joined(separator: ", ")) }
        if let a = q.answer { parts.append(q.choices.isEmpty ? a : "note: " + a) }
        return fitted("[answer to question \(q.id)] \(q.answeredBy ?? "?") answered \"\(clip(q.question))\" — " + parts.joined(separator: "; "))
    }

    /// The message that tells the asker nobody answered in time.
    public static func expiredBody(_ q: QuestionView) -> String {
        fitted("[question \(q.id) expired] \(q.to) did not answer \"\(clip(q.question))\" in time; decide without it or ask again.")
    }

    /// The message that puts a question in a peer agent's inbox.
    public static func peerBody(_ q: QuestionView) -> String {
        var text = "[question \(q.id) from \(q.asker)] \(q.question)"
        if !q.options.isEmpty {
            text += "\nOptions\(q.multi ? " (choose one or more)" : ""): " + q.options.joined(separator: " | ")
        }
        let footer = "\nAnswer with the answer tool (id \(q.id)) before it expires at unix \(Int(q.expiresAt))."
        return fitted(text, keeping: footer)
    }

    /// A message body that always fits the broker's limit, however many multi-byte characters the
    /// question, options and answer hold: a message that can never be sent would be retried by the outbox
    /// forever.
    static func fitted(_ text: String, keeping tail: String = "") -> String { WireLimits.fit(text, keeping: tail) }

    private static func clip(_ s: String) -> String { s.count > 200 ? String(s.prefix(200)) + "…" : s }
}
