import ArgumentParser
import Foundation
import Hummingbird
import Logging
import SafeRxDetect
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxServer
import SafeRxStoreCore
import SafeRxVault

@main
struct SafeRx: AsyncParsableCommand {
    static func main() async {
        // Files SafeRx creates (database, WAL, keys, exports) are private to the service account.
        umask(0o077)
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as FHIRError {
            // One clear line, never a Swift value.
            exit(withError: CLIError(error.diagnostics))
        } catch {
            exit(withError: error)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "saferx",
        abstract: "SafeRx: a pharmacy patient-data platform whose data layer cannot return PHI without an access scope.",
        subcommands: [
            Serve.self, Users.self, Token.self, Audit.self, Keys.self, Patients.self, BackupCommand.self, Disclosures.self,
            BreakGlass.self, Webhooks.self, Tracking.self, Fulfillment.self, MFA.self, Import.self, Alerts.self, Actors.self, Detect.self,
            Honeytokens.self, IncidentCommand.self, Clients.self, Simulate.self,
        ] + benchmarks)

    /// `saferx bench`, only in a build with the `Benchmarks` trait (it measures against a read with no protection).
    #if SAFERX_BENCHMARKS
    static let benchmarks: [any ParsableCommand.Type] = [Bench.self]
    #else
    static let benchmarks: [any ParsableCommand.Type] = []
    #endif
}

/// An error the command line reports as one line, without the usage text.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// `--data DIR` and `--key-file FILE`, shared by every subcommand that opens a store.
struct DataOptions: ParsableArguments {
    @Option(name: .customLong("data"), help: "Data directory (database, WAL, audit head). Holds no usable key.")
    var directory: String = "./saferx-data"

    @Option(
        name: .customLong("key-file"),
        help: ArgumentHelp(
            "Master key file, kept outside the data directory.",
            discussion: "Default: $SAFERX_MASTER_KEY_FILE, else ~/.config/saferx/master.key. Created (mode 0600) with a new store."))
    var keyFile: String?

    @Option(
        name: .customLong("database"),
        help: ArgumentHelp(
            "A PostgreSQL database to keep the store in (postgres://user:password@host:port/database).",
            discussion: """
                Default: $SAFERX_DATABASE, else the SQLite file in --data. The master key stays outside the database; \
                --data still holds the signed audit head and this process's files. The password may come from $PGPASSWORD.
                """))
    var databaseOption: String?

    var url: URL { URL(fileURLWithPath: directory, isDirectory: true) }

    /// The PostgreSQL database to use, if any: `--database`, else `$SAFERX_DATABASE`.
    var database: String? {
        let value = databaseOption ?? ProcessInfo.processInfo.environment["SAFERX_DATABASE"]
        return value?.isEmpty == false ? value : nil
    }

    /// Where the store is, for messages (the database without its password, else the data directory).
    var storeLocation: String {
        guard let database, var c = URLComponents(string: database) else { return directory }
        c.password = nil
        return c.string ?? "the PostgreSQL database"
    }

    var keyFileURL: URL { keyFile.map { URL(fileURLWithPath: $0) } ?? KeyAdministration.defaultKeyFile }

    /// The services over the store in `--data`, opened (created if needed) with the master key.
    func openPharmacy(policy: PolicyTable = .standard) async throws -> Pharmacy {
        let existed = FileManager.default.fileExists(atPath: keyFileURL.path)
        do {
            let pharmacy = try await Pharmacy.open(
                dataDirectory: url, database: database, keyFile: keyFileURL, policy: policy, logger: Logger(label: "saferx.store"))
            if !existed { announceNewKey() }
            return pharmacy
        } catch {
            throw CLIError("Cannot open the store in \(storeLocation): \(error)")
        }
    }

    func announceNewKey() {
        FileHandle.standardError.write(Data("""
            Created a new master key at \(keyFileURL.path) (mode 0600). Back it up apart from the data \
            directory and its backups: without it, neither can be read.\n
            """.utf8))
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the HTTP server.")

    @OptionGroup var data: DataOptions
    @Flag(help: "Seed a synthetic demo pharmacy into an empty store and write demo-credentials.json.")
    var demo = false
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one and prints it).") var port = 8080
    @Option(help: "Access policy table (role × purpose × resource → elements) to use instead of the bundled one.")
    var policy: String?
    @Option(help: "Refuse a refill until this share of the last fill's days' supply has elapsed (0.5 to 1.0).")
    var refillTooSoon: Double = 0.75
    @Option(
        help: ArgumentHelp(
            "Directory where patient notifications (sign-up and reset codes, 'you have a new message') are delivered as outbox.jsonl; '-' only logs that they were sent.",
            discussion: "Stands in for an e-mail/SMS gateway: it holds the address on the pharmacy record and the fixed text, nothing else."))
    var outbox: String = "./saferx-outbox"
    @Option(help: "The pharmacy (tenant id) that patient sign-ups are for.") var signupPharmacy: String = DemoPharmacy.tenant
    @Option(help: "Detection rules (JSON) to use instead of the bundled ones; validated before the server starts.") var rules: String?
    @Option(help: "E-mail address that security alerts are sent to through the notification outbox.") var securityContact: String?
    @Option(help: "Requests per second and burst per source address, RATE:BURST (429 with Retry-After above it).")
    var sourceLimit: String = "\(Int(RateLimit.perSource.rate)):\(Int(RateLimit.perSource.burst))"
    @Option(help: "Requests per second and burst per account or API client, RATE:BURST.")
    var accountLimit: String = "\(Int(RateLimit.perAccount.rate)):\(Int(RateLimit.perAccount.burst))"

    static func rateLimit(_ text: String, _ flag: String) throws -> RateLimit {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let rate = Double(parts[0]), let burst = Double(parts[1]), rate > 0, burst >= 1 else {
            throw ValidationError("\(flag) must be RATE:BURST with a positive rate and a burst of at least 1 (for example 30:900)")
        }
        return RateLimit(rate: rate, burst: burst)
    }

    func validate() throws {
        guard (0.5...1.0).contains(refillTooSoon) else { throw ValidationError("--refill-too-soon must be between 0.5 and 1.0") }
        _ = try Self.rateLimit(sourceLimit, "--source-limit")
        _ = try Self.rateLimit(accountLimit, "--account-limit")
    }

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "saferx")
        logger.logLevel = .info
        // The policy is loaded and validated before anything else: an unknown role, purpose, type or element stops here.
        let table: PolicyTable
        do {
            table = try policy.map { try PolicyTable.load(URL(fileURLWithPath: $0)) } ?? PolicyTable.loadBundled()
        } catch {
            throw CLIError("Refusing to start: \(error)")
        }
        // So are the detection rules: a rule the detector cannot read would silently not watch.
        let detectionRules: DetectionRules
        do {
            detectionRules = try rules.map { try DetectionRules.load($0) } ?? DetectionRules.bundled()
        } catch {
            throw CLIError("Refusing to start: detection rules: \(error)")
        }
        let pharmacy = try await data.openPharmacy(policy: table)
        pharmacy.refillRules.tooSoonFraction = refillTooSoon
        if demo {
            let credentialsFile = data.url.appendingPathComponent("demo-credentials.json")
            if try await pharmacy.isEmpty() {
                say("Seeding the demo pharmacy (synthetic data)...")
                let creds = try await pharmacy.seedDemo(DemoPharmacy(honeytokens: 3))
                try writeCredentials(creds, to: credentialsFile)
            }
            say("Demo credentials: \(credentialsFile.path) (mode 0600)")
        }
        let host = host, demo = demo
        let sender: any NotificationSender
        if outbox == "-" {
            sender = LogNotificationSender(logger: logger)
        } else {
            do {
                sender = try FileNotificationSender(directory: URL(fileURLWithPath: outbox, isDirectory: true))
            } catch {
                throw CLIError("Cannot use --outbox \(outbox): \(error)")
            }
            say("Notifications (codes, new-message notices) are delivered to \(outbox)/outbox.jsonl")
        }
        let app = try await SafeRxServer.application(
            pharmacy: pharmacy,
            configuration: .init(host: host, port: port, onListening: { bound in
                let url = "http://\(host):\(bound)"
                say("SafeRx listening on \(url)  (FHIR base \(url)/fhir)")
                if demo {
                    say("Log in: curl -s -X POST \(url)/auth/login -H 'Content-Type: application/json' -d '{\"username\":\"patient001\",\"password\":\"<from demo-credentials.json>\"}'")
                }
            }, notificationSender: sender, signupTenant: signupPharmacy,
            detection: DetectionSettings(rules: detectionRules, securityContact: securityContact),
            sourceLimit: try Self.rateLimit(sourceLimit, "--source-limit"), accountLimit: try Self.rateLimit(accountLimit, "--account-limit")),
            logger: logger)
        say("Exfiltration detection: \(detectionRules.rules.count) rules (\(rules ?? "bundled")); alerts: saferx alerts list")
        try await app.runService()
    }

    func writeCredentials(_ creds: [DemoCredential], to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(creds)
        _ = FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600])
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
        try data.write(to: url)
    }
}

struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage user accounts (API clients: saferx clients).", subcommands: [Add.self, List.self, Disable.self, ResetPassword.self, ResetMFA.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a user. Prints a generated password unless --password-stdin.")
        @OptionGroup var data: DataOptions
        @Option(help: "Username.") var username: String
        @Option(help: "Role: \(Role.allCases.map(\.rawValue).joined(separator: ", ")).") var role: String
        @Option(help: "Tenant (pharmacy organization) id.") var tenant: String = DemoPharmacy.tenant
        @Option(help: "For patient users: their Patient id.") var patient: String?
        @Flag(help: "Read the password from standard input instead of generating one.") var passwordStdin = false

        func validate() throws {
            guard let r = Role(rawValue: role) else {
                throw ValidationError("Unknown role '\(role)'; use one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if r == .partner || r == .businessLine {
                throw ValidationError("\(role) accounts are API clients, not password users: use saferx clients add --client-id ID --role \(role)")
            }
            if r == .patient, patient.map(FHIRID.isValid) != true { throw ValidationError("Patient users need --patient <id>") }
            if r != .patient, patient != nil { throw ValidationError("--patient is only for patient users") }
            guard !username.isEmpty, username.count <= 128 else { throw ValidationError("Username must be 1-128 characters") }
        }

        func run() async throws {
            let pharmacy = try await data.openPharmacy()
            let password: String
            if passwordStdin {
                password = (readLine(strippingNewline: true) ?? "")
                try AuthService.checkPasswordPolicy(password)
            } else {
                password = DemoPharmacy.randomSecret(bytes: 15)
            }
            let id = try await pharmacy.admin.addUser(.operatorCommand(reason: "saferx users add"), username: username, role: Role(rawValue: role)!, tenant: tenant, patient: patient, password: password)
            say("Added \(role) '\(username)' (\(id)) in tenant \(tenant).")
            if !passwordStdin { say("Password (shown once): \(password)") }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users and API clients.")
        @OptionGroup var data: DataOptions

        func run() async throws {
            let pharmacy = try await data.openPharmacy()
            say("USERNAME\tROLE\tTENANT\tPATIENT\tSTATUS\tID")
            for a in try await pharmacy.admin.accounts(.operatorCommand(reason: "saferx users list")) {
                say("\(a.name)\(a.isClient ? " (client)" : "")\t\(a.role)\t\(a.tenant)\t\(a.patientID.map { "Patient/\($0)" } ?? "-")\t\(a.status)\t\(a.id)")
            }
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a user; their tokens stop working at once.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Username.") var username: String

        func run() async throws {
            try await data.openPharmacy().admin.disableUser(.operatorCommand(reason: "saferx users disable"), username: username)
            say("Disabled '\(username)'.")
        }
    }
}

extension Users {
    struct ResetPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset-password",
            abstract: "Give a user a new password (printed once, or read with --password-stdin); every session ends. Staff "
                + "also lose their second factor and enrol a new one at their next sign-in.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Username.") var username: String
        @Option(help: "Why, and how the person's identity was checked (kept in the audit log).") var reason: String
        @Flag(help: "Read the new password from standard input instead of generating one.") var passwordStdin = false

        func validate() throws {
            guard reason.count >= 10 else { throw ValidationError("--reason must say why, in at least 10 characters") }
        }

        func run() async throws {
            let pharmacy = try await data.openPharmacy()
            let password: String
            if passwordStdin {
                password = readLine(strippingNewline: true) ?? ""
                try AuthService.checkPasswordPolicy(password, context: [username])
            } else {
                password = DemoPharmacy.randomSecret(bytes: 15)
            }
            let staff = try await pharmacy.admin.resetPassword(.operatorCommand(reason: "saferx users reset-password"), username: username, password: password, reason: reason)
            say("New password for '\(username)'; every session ended.\(staff ? " They must enrol a new second factor at their next sign-in." : "")")
            if !passwordStdin { say("Password (shown once): \(password)") }
        }
    }

    struct ResetMFA: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset-mfa",
            abstract: "Remove a user's second factor (a lost phone). Staff must enrol a new one at their next sign-in.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Username.") var username: String
        @Option(help: "Why (kept in the audit log).") var reason: String

        func validate() throws {
            guard reason.count >= 10 else { throw ValidationError("--reason must say why, in at least 10 characters") }
        }

        func run() async throws {
            let staff = try await data.openPharmacy().admin.resetMFA(.operatorCommand(reason: "saferx users reset-mfa"), username: username, reason: reason)
            say("Removed the second factor of '\(username)'.\(staff ? " They must enrol a new one at their next sign-in." : "")")
        }
    }
}

struct MFA: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mfa", abstract: "Second-factor helpers.", subcommands: [Code.self])

    struct Code: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the current TOTP code for a base32 secret, as an authenticator app would (demo and scripts).")
        @Option(help: "The base32 secret (demo-credentials.json 'totp_secret', or the 'secret' from enrolment).") var secret: String

        func run() async throws {
            guard let key = Base32.decode(secret), key.count >= 10 else { throw ValidationError("--secret is not a base32 TOTP secret") }
            print(TOTP(secret: key).code())
        }
    }
}

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a short-lived access token for a user (operators and tests).")
    @OptionGroup var data: DataOptions
    @Option(help: "Username.") var user: String
    @Option(help: "Narrow the token to SMART-style scopes, e.g. 'user/*.read' or 'patient/MedicationRequest.read'.")
    var scope: String?
    @Option(help: "Narrow the token to these purposes of use (comma-separated HL7 v3 codes, e.g. HPAYMT); requests without X-Purpose-Of-Use act under the role's default if carried, else the first of them.")
    var purpose: String?
    @Option(help: "The access policy table the server runs with, if not the bundled one (purposes are checked against it).")
    var policy: String?

    func run() async throws {
        let table: PolicyTable
        do {
            table = try policy.map { try PolicyTable.load(URL(fileURLWithPath: $0)) } ?? PolicyTable.loadBundled()
        } catch {
            throw CLIError("\(error)")
        }
        let pharmacy = try await data.openPharmacy(policy: table)
        var purposes: Set<PurposeOfUse>? = nil
        if let purpose {
            do {
                purposes = Set(try purpose.split(separator: ",").map { code throws(PolicyError) in try PurposeOfUse.parse(String(code)) })
            } catch {
                throw CLIError("--purpose: \(error)")
            }
        }
        print(try await pharmacy.admin.issueToken(.operatorCommand(reason: "saferx token"), username: user, scope: scope, purposes: purposes))
    }
}

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify or export the tamper-evident audit log.", subcommands: [Verify.self, Export.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every hash, link and signed checkpoint. Exit 0 if intact, 1 with the first bad sequence number.")
        @OptionGroup var data: DataOptions

        func run() async throws {
            let result = try await data.openPharmacy().admin.verifyAudit(.operatorCommand(reason: "saferx audit verify"))
            if result.ok {
                say("OK: \(result.records) records, \(result.checkpoints) signed checkpoints")
            } else {
                say("FAILED at sequence \(result.firstBad!): \(result.reason ?? "unknown")")
                throw ExitCode(1)
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the audit log as NDJSON of FHIR AuditEvent.",
            discussion: """
                Source addresses, user agents and free-text details are sealed in the log and left out of the export \
                unless --include-sealed is given (the export is audited either way).
                """)
        @OptionGroup var data: DataOptions
        @Option(help: "Write to this file (mode 0600) instead of standard output.") var output: String?
        @Flag(help: "Include the sealed fields (source address, user agent, detail) in clear.") var includeSealed = false

        func run() async throws {
            let (out, _) = try await data.openPharmacy().admin.exportAudit(.operatorCommand(reason: "saferx audit export"), includeSealed: includeSealed)
            if let output {
                _ = FileManager.default.createFile(atPath: output, contents: nil, attributes: [.posixPermissions: 0o600])
                try out.write(to: URL(fileURLWithPath: output))
            } else {
                FileHandle.standardOutput.write(out)
            }
        }
    }
}

/// Writes a line to standard output at once (`print` is block-buffered when stdout is not a terminal).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

extension Pharmacy {
    /// Runs an operator's command and signs the audit head afterwards, also when it fails part-way (a judgement recorded
    /// before a refused conclusion, a rotation before a failed re-encryption): a store changed while the server is
    /// stopped still ends on a signed checkpoint.
    func signing<T>(_ body: () async throws -> T) async throws -> T {
        do {
            let result = try await body()
            await checkpoint()
            return result
        } catch {
            await checkpoint()
            throw error
        }
    }
}
