import HiveWire

/// Who may do what on the forge, without I/O: the rules the HTTP layer applies to every request.
public enum ForgeAccess: Int, Sendable, Comparable {
    case none = 0, read, write

    public static func < (a: ForgeAccess, b: ForgeAccess) -> Bool { a.rawValue < b.rawValue }

    /// An organisation member's role.
    public enum Role: String, Sendable, CaseIterable { case read, write }

    /// The access `user` has to a repo owned by `owner`.
    /// - `admin`: the operator, who may do anything;
    /// - a user owns and writes its own repos;
    /// - in an organisation, the member's role, else the organisation's default role for every user;
    /// - a repo that is not private can be read by every user.
    public static func level(user: String, admin: Bool, owner: String, ownerIsOrg: Bool, role: Role?, isPrivate: Bool) -> ForgeAccess {
        if admin { return .write }
        var level: ForgeAccess = isPrivate ? .none : .read
        if !ownerIsOrg, owner == user { level = .write }
        if ownerIsOrg, let role { level = max(level, role == .write ? .write : .read) }
        return level
    }
}

/// Names on the forge: owners are agent names (or `operator`, or an organisation name of the same shape);
/// repos are short names of letters, digits, `.`, `_`, `-`, never `.`-only and never ending in `.git`.
public enum ForgeName {
    public static func owner(_ raw: String) throws(ForgeError) -> String {
        guard raw == "operator" || (try? AgentName(raw)) != nil else {
            throw .badRequest("'\(raw.prefix(64))' is not a valid owner name (lowercase letters, digits and '-', starting with a letter)")
        }
        return raw
    }

    public static func repo(_ raw: String) throws(ForgeError) -> String {
        guard raw.utf8.count <= 100, raw.range(of: #"^[A-Za-z0-9_][A-Za-z0-9._-]*$"#, options: .regularExpression) != nil,
              !raw.hasSuffix(".git"), !raw.contains("..") else {
            throw .badRequest("'\(raw.prefix(100))' is not a valid repo name (letters, digits, '.', '_', '-'; at most 100; not ending in .git)")
        }
        return raw
    }
}

/// A refusal with its HTTP status: 400 bad input, 401 who are you, 403 not allowed, 404 not there (or
/// not yours to know about), 409 already there.
public enum ForgeError: Error, Sendable, Equatable, CustomStringConvertible {
    case badRequest(String)
    case unauthorized
    case forbidden(String)
    case notFound
    case conflict(String)
    /// Too many git requests at once; retry after this many seconds.
    case busy(retryAfter: Int)
    case tooLarge(String)
    case timedOut(String)

    public var status: Int {
        switch self {
        case .badRequest: return 422
        case .unauthorized: return 401
        case .forbidden: return 403
        case .notFound: return 404
        case .conflict: return 409
        case .busy: return 503
        case .tooLarge: return 413
        case .timedOut: return 408
        }
    }

    public var description: String {
        switch self {
        case .badRequest(let m), .forbidden(let m), .conflict(let m), .tooLarge(let m), .timedOut(let m): return m
        case .busy(let after): return "the forge is serving as many git requests as it takes at once; retry in \(after) s"
        case .unauthorized: return "a token is needed: Authorization: token <t>, or HTTP Basic with the token as password"
        case .notFound: return "not found"
        }
    }
}
