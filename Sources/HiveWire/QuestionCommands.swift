import Foundation

// Questions: an agent asks the operator (or a peer) something and goes on working; the answer, or the
// news that nobody answered in time, comes back to it as an ordinary message.

/// One question, as the dashboard, `hive questions` and the agents see it.
public struct QuestionView: Codable, Sendable, Equatable {
    public var id: Int64
    /// The agent that asked.
    public var asker: String
    /// `operator` or the agent asked.
    public var to: String
    public var question: String
    /// The choices offered, or empty for a free-text answer.
    public var options: [String]
    /// Whether more than one option may be chosen.
    public var multi: Bool
    public var createdAt: Double
    public var expiresAt: Double
    public var state: QuestionState
    /// The options chosen (a subset of `options`), when answered.
    public var choices: [String]
    /// The free text of the answer (or the note that came with the choices), when answered.
    @Nullable public var answer: String?
    @Nullable public var answeredBy: String?
    @Nullable public var answeredAt: Double?

    public init(id: Int64, asker: String, to: String, question: String, options: [String], multi: Bool, createdAt: Double,
                expiresAt: Double, state: QuestionState, choices: [String], answer: String?, answeredBy: String?, answeredAt: Double?) {
        self.id = id; self.asker = asker; self.to = to; self.question = question; self.options = options; self.multi = multi
        self.createdAt = createdAt; self.expiresAt = expiresAt; self.state = state; self.choices = choices; self.answer = answer
        self.answeredBy = answeredBy; self.answeredAt = answeredAt
    }
}

/// Ask the operator (default) or a peer agent a question. Returns at once; the answer arrives later as a
/// message (`[answer to question N] ...`), or `[question N expired]` after `ttl_seconds`.
public struct AskCommand: HiveCommand {
    public static let cmd = "ask"
    public var question: String
    /// Up to 10 choices of up to 100 bytes each; omit for a free-text answer.
    public var options: [String]?
    /// Allow choosing several options.
    public var multi: Bool?
    /// How long an answer is useful, 10 seconds to 7 days; default one day.
    public var ttlSeconds: Double?
    /// `operator` (default) or an agent's name.
    public var to: String?
    public init(question: String, options: [String]? = nil, multi: Bool? = nil, ttlSeconds: Double? = nil, to: String? = nil) {
        self.question = question; self.options = options; self.multi = multi; self.ttlSeconds = ttlSeconds; self.to = to
    }
    public struct Reply: Codable, Sendable, Equatable {
        public var id: Int64
        public var to: String
        public var expiresAt: Double
        public init(id: Int64, to: String, expiresAt: Double) { self.id = id; self.to = to; self.expiresAt = expiresAt }
    }
}

/// Answer an open question addressed to you: the operator on the admin or web socket, an agent on its own.
/// With options, `choices` names one of them (several when the question allows it) and `answer` may add
/// a note; without options, `answer` is the reply.
public struct AnswerCommand: HiveCommand {
    public static let cmd = "answer"
    public var id: Int64
    public var choices: [String]?
    public var answer: String?
    public init(id: Int64, choices: [String]? = nil, answer: String? = nil) { self.id = id; self.choices = choices; self.answer = answer }
    public struct Reply: Codable, Sendable, Equatable {
        public var question: QuestionView
        public init(question: QuestionView) { self.question = question }
    }
}

/// Open questions: on the admin and web sockets every open one (those for the operator first), with
/// `all` the recently closed too; on an agent's socket the ones addressed to that agent.
public struct QuestionsCommand: HiveCommand {
    public static let cmd = "questions"
    public var all: Bool?
    public init(all: Bool? = nil) { self.all = all }
    public struct Reply: Codable, Sendable, Equatable {
        public var questions: [QuestionView]
        public init(questions: [QuestionView]) { self.questions = questions }
    }
}

/// The limits a question must keep, checked in core. They keep every message a question turns into
/// (to a peer, the answer, the expiry) under the message body limit.
public enum QuestionLimits {
    public static let maxQuestionBytes = 1500
    public static let maxOptions = 10
    public static let maxOptionBytes = 100
    public static let maxAnswerBytes = 1500
    public static let defaultTTL: Double = 86_400
    public static let minTTL: Double = 10
    public static let maxTTL: Double = 7 * 86_400
    /// Open questions one agent may have waiting at once.
    public static let maxOpenPerAsker = 20
}
