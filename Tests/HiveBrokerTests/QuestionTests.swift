import Foundation
@testable import HiveBroker
import HiveWire
import Testing

@Suite("Questions")
struct QuestionTests {
    func asked(_ question: String, options: [String]? = nil, multi: Bool? = nil, ttl: Double? = nil) throws -> QuestionLifecycle.Asked {
        try QuestionLifecycle.check(AskCommand(question: question, options: options, multi: multi, ttlSeconds: ttl))
    }

    /// Every message `agent` has waiting in `broker`, oldest first.
    func inbox(_ broker: any HiveStore, _ agent: AgentName) throws -> [MessageView] {
        try broker.recv(agent, max: 32, wait: .zero).messages
    }

    @Test("the state machine: open → answered or expired, and nothing after")
    func lifecycle() {
        #expect(QuestionLifecycle.apply(.answer, to: .open) == .moved(to: .answered))
        #expect(QuestionLifecycle.apply(.expire, to: .open) == .moved(to: .expired))
        for closed in [QuestionState.answered, .expired] {
            #expect(QuestionLifecycle.apply(.answer, to: closed).next == nil)
            #expect(QuestionLifecycle.apply(.expire, to: closed).next == nil)
        }
    }

    @Test("asking checks size, options and TTL, naming the field")
    func checks() throws {
        func refusal(_ c: AskCommand) -> String? {
            do { _ = try QuestionLifecycle.check(c); return nil } catch { return error.message }
        }
        #expect(refusal(AskCommand(question: "  ")) == "field 'question' must be 1 to 1500 bytes")
        #expect(refusal(AskCommand(question: String(repeating: "x", count: 1501)))?.contains("'question'") == true)
        #expect(refusal(AskCommand(question: "q", options: (1...11).map(String.init)))?.contains("at most 10") == true)
        #expect(refusal(AskCommand(question: "q", options: ["a", "a"]))?.contains("twice") == true)
        #expect(refusal(AskCommand(question: "q", options: ["a", ""]))?.contains("'options'") == true)
        #expect(refusal(AskCommand(question: "q", options: ["a"], multi: true))?.contains("'multi'") == true)
        #expect(refusal(AskCommand(question: "q", ttlSeconds: 1))?.contains("'ttl_seconds'") == true)
        #expect(refusal(AskCommand(question: "q", ttlSeconds: .infinity))?.contains("'ttl_seconds'") == true)
        #expect(try QuestionLifecycle.check(AskCommand(question: " deploy? ")).ttl == QuestionLimits.defaultTTL)
        #expect(try QuestionLifecycle.check(AskCommand(question: " deploy? ")).question == "deploy?")
    }

    @Test("the operator answers with a choice; the asker gets it as a message from the operator", arguments: StoreKind.available)
    func operatorAnswers(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        let q = try broker.ask(iris, to: .operator, try asked("Which env?", options: ["staging", "prod"]))
        #expect(q.state == .open && q.to == "operator")
        #expect(try broker.questions().map(\.id) == [q.id])
        #expect(try inbox(broker, iris).isEmpty, "nothing comes back before the answer")

        #expect(throws: RequestError.self) { try broker.answer(q.id, by: .operator, choices: ["dev"], answer: nil) }
        #expect(throws: RequestError.self) { try broker.answer(q.id, by: .operator, choices: ["staging", "prod"], answer: nil) }
        #expect(throws: RequestError.self) { try broker.answer(q.id, by: .operator, choices: nil, answer: "prod") }
        #expect(throws: BrokerError.noSuchQuestion(q.id)) { try broker.answer(q.id, by: .agent(.manager), choices: ["prod"], answer: nil) }

        let done = try broker.answer(q.id, by: .operator, choices: ["prod"], answer: "after 18:00")
        #expect(done.state == .answered && done.choices == ["prod"] && done.answeredBy == "operator")
        let got = try inbox(broker, iris)
        #expect(got.count == 1)
        #expect(got.first?.from == "operator")
        #expect(got.first?.body.hasPrefix("[answer to question \(q.id)]") == true)
        #expect(got.first?.body.contains("chose: prod") == true && got.first?.body.contains("after 18:00") == true)
        #expect(try broker.questions().isEmpty)
        #expect(throws: BrokerError.questionNotOpen(q.id, state: "answered")) {
            try broker.answer(q.id, by: .operator, choices: ["staging"], answer: nil)
        }
        #expect(try inbox(broker, iris).isEmpty, "a refused second answer sends nothing")
    }

    @Test("a question to a peer lands in its inbox; its answer goes back in reply to it", arguments: StoreKind.available)
    func peerAnswers(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris"), juno = try t.agent("juno")
        let q = try broker.ask(iris, to: .agent(juno), try asked("Is the build green?"))
        let delivered = try inbox(broker, juno)
        #expect(delivered.count == 1)
        #expect(delivered.first?.from == "iris")
        #expect(delivered.first?.body.contains("[question \(q.id) from iris] Is the build green?") == true)
        #expect(throws: BrokerError.notYourQuestion(q.id, to: "juno")) { try broker.answer(q.id, by: .operator, choices: nil, answer: "yes") }
        #expect(throws: BrokerError.noSuchQuestion(q.id), "another agent learns nothing about it") {
            try broker.answer(q.id, by: .agent(.manager), choices: nil, answer: "yes")
        }
        _ = try broker.answer(q.id, by: .agent(juno), choices: nil, answer: "yes, 412 tests")
        let back = try inbox(broker, iris)
        #expect(back.first?.from == "juno")
        #expect(back.first?.inReplyTo == delivered.first?.id)
        #expect(back.first?.body.contains("yes, 412 tests") == true)
        #expect(throws: RequestError.self) { try broker.ask(iris, to: .agent(iris), try asked("me?")) }
        #expect(throws: BrokerError.unknownRecipient("nobody")) { try broker.ask(iris, to: .agent(try AgentName("nobody")), try asked("?")) }
    }

    @Test("unanswered questions expire and the asker is told, once; late answers are refused", arguments: StoreKind.available)
    func expiry(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        let q = try broker.ask(iris, to: .operator, try asked("Ship it?", ttl: 60))
        #expect(try broker.expireQuestions() == 0)
        t.clock.advance(days: 1.0 / 1440 + 0.0001) // just past a minute
        #expect(throws: BrokerError.questionNotOpen(q.id, state: "expired")) { try broker.answer(q.id, by: .operator, choices: nil, answer: "yes") }
        #expect(try broker.expireQuestions() == 1)
        #expect(try broker.expireQuestions() == 0)
        let told = try inbox(broker, iris)
        #expect(told.count == 1)
        #expect(told.first?.from == "system")
        #expect(told.first?.body.hasPrefix("[question \(q.id) expired]") == true)
        #expect(try broker.question(q.id)?.state == .expired)
    }

    @Test("owed messages survive: a reply whose send never happened is sent by the next round")
    func outbox() throws {
        let t = try TestBroker()
        let broker = t.sqlite!
        let iris = try t.agent("iris")
        let q = try broker.ask(iris, to: .operator, try asked("Proceed?"))
        // As if core died between the answer's commit and its message.
        try broker.pool.write { try $0.execute(sql: "UPDATE question SET state = 'answered', answer = 'go', answered_by = 'operator' WHERE id = ?", arguments: [q.id]) }
        #expect(try inbox(broker, iris).isEmpty)
        broker.deliverOwedQuestionMessages()
        #expect(try inbox(broker, iris).map(\.body).first?.contains("go") == true)
        broker.deliverOwedQuestionMessages()
        #expect(try inbox(broker, iris).isEmpty, "sent once")
    }

    @Test("a peer destroyed before it saw the question makes it expire, and the asker hears of it")
    func peerGone() throws {
        let t = try TestBroker()
        let broker = t.sqlite!
        let iris = try t.agent("iris"), juno = try t.agent("juno")
        let q = try broker.ask(iris, to: .agent(juno), try asked("Still there?"))
        try broker.pool.write { try $0.execute(sql: "UPDATE question SET ask_message_id = NULL WHERE id = ?", arguments: [q.id]) }
        try broker.destroy(juno, purge: false)
        broker.deliverOwedQuestionMessages()
        #expect(try broker.question(q.id)?.state == .expired)
        broker.deliverOwedQuestionMessages()
        #expect(try inbox(broker, iris).first?.body.contains("expired") == true)
    }

    @Test("an agent may have 20 open questions at once", arguments: StoreKind.available)
    func cap(kind: StoreKind) throws {
        let t = try TestBroker(kind)
        let broker = t.broker
        let iris = try t.agent("iris")
        for i in 0..<QuestionLimits.maxOpenPerAsker { _ = try broker.ask(iris, to: .operator, try asked("q\(i)")) }
        #expect(throws: BrokerError.questionCap(QuestionLimits.maxOpenPerAsker)) { try broker.ask(iris, to: .operator, try asked("one more")) }
    }
}

@Suite("Question messages always fit")
struct QuestionBodyFitTests {
    @Test("finding 11: answers, expiries and peer questions of the largest multi-byte sizes are each under the body limit")
    func fits() throws {
        let wide = String(repeating: "😀", count: 375) // 1500 bytes
        let options = (0..<10).map { _ in String(repeating: "€", count: 33) } // ~100 bytes each
        var q = QuestionView(id: 7, asker: "alice", to: "bob", question: wide, options: options, multi: true, createdAt: 0, expiresAt: 1e10,
                             state: .answered, choices: options, answer: wide, answeredBy: "bob", answeredAt: 1)
        for body in [QuestionLifecycle.answerBody(q), QuestionLifecycle.expiredBody(q), QuestionLifecycle.peerBody(q)] {
            #expect(body.utf8.count <= WireLimits.maxBodyBytes)
        }
        #expect(QuestionLifecycle.peerBody(q).hasSuffix("before it expires at unix 10000000000."), "the instructions survive the cut")
        q.answer = "short"
        #expect(QuestionLifecycle.answerBody(q).hasSuffix("note: short"))
    }
}
