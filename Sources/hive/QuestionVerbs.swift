import ArgumentParser
import Foundation
import HiveClient
import HiveWire

struct Questions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "questions",
        abstract: "List open questions agents asked (yours first), with their options and expiry.",
        discussion: """
            Agents ask with their `ask` tool: a question to the operator lands here and on the dashboard; one
            to another agent goes to that agent's inbox (listed here too, so you can see it). Answer with
            `hive answer ID`. A question nobody answers in time expires, and its asker is told.
            """)
    @OptionGroup var hive: RunDirOption
    @Flag(help: "Also show the 50 most recently answered or expired ones.") var all = false
    @Flag(help: "Print JSON instead of text.") var json = false

    func run() async throws {
        try await operatorVerb {
            let questions = try await hive.connect().call(QuestionsCommand(all: all ? true : nil)).questions
            if json { return printJSON(questions) }
            if questions.isEmpty { return print(all ? "no questions yet" : "no open questions") }
            for q in questions { print(Self.describe(q)) }
        }
    }

    static func describe(_ q: QuestionView, now: Double = Date().timeIntervalSince1970) -> String {
        var head = "#\(q.id) \(q.asker) → \(q.to) — \(q.state)"
        if q.state == .open { head += " (expires in \(HumanTime.span(seconds: Int(q.expiresAt - now))))" }
        var lines = [head, "  " + q.question.replacingOccurrences(of: "\n", with: "\n  ")]
        for (i, o) in q.options.enumerated() { lines.append("  \(i + 1). \(o)\(q.choices.contains(o) ? "  ✔" : "")") }
        if q.multi { lines.append("  (several may be chosen)") }
        if let a = q.answer { lines.append("  answer\(q.answeredBy.map { " by \($0)" } ?? ""): \(a)") }
        return Pending.printable(lines.joined(separator: "\n"))
    }
}

struct Answer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "answer",
        abstract: "Answer an open question addressed to the operator; the asker gets it as a message.",
        discussion: """
            With options: pick by number or by text, e.g. `hive answer 4 --choice 2` or `--choice "staging"`
            (repeat --choice when the question allows several). Words after the id are a note sent along.
            Without options: the words after the id are the answer, e.g. `hive answer 5 yes, go ahead`.
            """)
    @OptionGroup var hive: RunDirOption
    @Argument(help: "The question's id (see hive questions).") var id: Int64
    @Option(name: .customLong("choice"), help: ArgumentHelp("An option, by its number or its text; repeat for several.", valueName: "option"))
    var choices: [String] = []
    @Argument(help: "The answer (or a note with the choices).") var text: [String] = []

    func run() async throws {
        try await operatorVerb {
            let connection = try hive.connect()
            var picked = choices
            if !choices.isEmpty {
                // Numbers refer to the options as `hive questions` lists them.
                let asked = try await connection.call(QuestionsCommand(all: true)).questions.first { $0.id == id }
                if let options = asked?.options {
                    // An option spelled exactly as given wins over reading it as a number.
                    picked = choices.map { c in options.contains(c) ? c : Int(c).flatMap { $0 >= 1 && $0 <= options.count ? options[$0 - 1] : nil } ?? c }
                }
            }
            let note = text.joined(separator: " ")
            let q = try await connection.call(AnswerCommand(id: id, choices: picked.isEmpty ? nil : picked, answer: note.isEmpty ? nil : note)).question
            print(Questions.describe(q))
        }
    }
}
