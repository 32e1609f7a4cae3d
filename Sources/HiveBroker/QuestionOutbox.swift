import Foundation
import HiveWire
import Synchronization

/// Which message a question owes: the question itself to its peer, or the answer (or expiry) to its asker.
public enum OwedMessage: String, Sendable {
    case ask, reply
    public var column: String { self == .ask ? "ask_message_id" : "reply_message_id" }
}

/// The questions' outbox, the same on every store. A question and the messages it turns into cannot share
/// a transaction (sends go through the group commit), so the row commits first with its message ids null,
/// then ``deliverOwedQuestionMessages()`` sends what is owed and records the ids. Core calls it after every
/// change and once a second, so a crash in between delays a message, never loses it (at worst, a crash
/// right after a send repeats it once). A store gives the four primitives; the rules live here.
public protocol QuestionOutbox: MessageStore & HiveNodes {
    /// Up to 200 questions that still owe a message, oldest first, each with the id of the message that asked it.
    func owedQuestions() throws -> [(askMessage: Int64?, question: QuestionView)]
    /// Stores the id of a message a question turned into (0: its party is gone); false when the store would not take it.
    func recordQuestionMessage(_ kind: OwedMessage, _ message: Int64, for question: Int64) -> Bool
    /// The peer was destroyed before it saw the question: the question expires, so the asker hears of it.
    func expireUnaskable(_ question: Int64)
    /// Messages sent whose id could not be stored yet (kind → question id → message id), held while the
    /// outbox is worked so two callers never send the same message.
    var questionOutbox: Mutex<[String: [Int64: Int64]]> { get }
}

extension QuestionOutbox {
    /// Sends every message a question still owes: the question to its peer, the answer or expiry to its
    /// asker. A party that no longer exists gets nothing (id 0).
    /// In a hive on many hosts only the node holding the questions duty does it (a lock within one process
    /// cannot keep two nodes from sending the same message); the others' new questions go out within a second.
    public func deliverOwedQuestionMessages() {
        guard holds(.questions) else { return }
        questionOutbox.withLock { sendOwed(&$0) }
    }

    /// `unrecorded`: messages sent whose id could not be stored yet; they are recorded before anything is
    /// sent again, so a failing write cannot make a message repeat.
    private func sendOwed(_ unrecorded: inout [String: [Int64: Int64]]) {
        for (kind, sent) in unrecorded {
            for (question, message) in sent where recordQuestionMessage(OwedMessage(rawValue: kind)!, message, for: question) {
                unrecorded[kind]?[question] = nil
            }
        }
        for (askMessage, q) in (try? owedQuestions()) ?? [] {
            guard let asker = try? AgentName(q.asker) else { continue }
            if q.state == .open, let peer = try? AgentName(q.to) {
                guard unrecorded[OwedMessage.ask.rawValue]?[q.id] == nil else { continue }
                do {
                    let sent = try send(from: .agent(asker), to: .agent(peer), body: QuestionLifecycle.peerBody(q), inReplyTo: nil)
                    if !recordQuestionMessage(.ask, sent.ids[0], for: q.id) { unrecorded[OwedMessage.ask.rawValue, default: [:]][q.id] = sent.ids[0] }
                } catch BrokerError.unknownRecipient, BrokerError.destroyedRecipient {
                    expireUnaskable(q.id)
                } catch {
                    continue // the store failed; the next round tries again
                }
                continue
            }
            let from: Sender = q.state == .answered
                ? (q.answeredBy == "operator" ? .operator : (try? AgentName(q.answeredBy ?? "")).map(Sender.agent) ?? .system)
                : .system
            let body = q.state == .answered ? QuestionLifecycle.answerBody(q) : QuestionLifecycle.expiredBody(q)
            let replyTo = from == .system ? nil : askMessage.flatMap { $0 > 0 ? $0 : nil }
            guard unrecorded[OwedMessage.reply.rawValue]?[q.id] == nil else { continue }
            do {
                let sent = try send(from: from, to: .agent(asker), body: body, inReplyTo: replyTo)
                if !recordQuestionMessage(.reply, sent.ids[0], for: q.id) { unrecorded[OwedMessage.reply.rawValue, default: [:]][q.id] = sent.ids[0] }
            } catch BrokerError.unknownRecipient, BrokerError.destroyedRecipient {
                _ = recordQuestionMessage(.reply, 0, for: q.id)
            } catch {
                continue
            }
        }
    }
}

extension QuestionOutbox where Self: QuestionStore {
    /// After a question changed (asked, answered): sends what it owes, then reads it back.
    public func owedSent(_ id: Int64) throws -> QuestionView {
        deliverOwedQuestionMessages()
        guard let asked = try question(id) else { throw BrokerError.noSuchQuestion(id) } // swept meanwhile by retention
        return asked
    }
}

/// Options and choices as stored: a JSON array of strings (unreadable text reads as none).
public enum QuestionOutboxText {
    public static func json(_ list: [String]) -> String {
        String(decoding: (try? JSONEncoder().encode(list)) ?? Data("[]".utf8), as: UTF8.self)
    }

    public static func list(_ text: String?) -> [String] {
        text.flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) } ?? []
    }
}
