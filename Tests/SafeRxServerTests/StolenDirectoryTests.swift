import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import SafeRxModel
import SafeRxPostgres
import SafeRxSQL
import SafeRxVault
import Testing

/// CaptureRx / Postmeds replay: an intruder walks off with the data directory, a backup, an audit export and the
/// server's log. None of it may hold a demo patient's name, birth date, e-mail, phone, street address or Rx number.
@Suite("Stolen-directory replay") struct StolenDirectoryTests {
    @Test("data directory, backup, audit export and server log hold no plaintext PHI of any demo patient")
    func stolenDirectory() async throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("saferx-stolen-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: base) }
        let data = base.appendingPathComponent("data"), keyFile = base.appendingPathComponent("secrets/master.key")
        let log = base.appendingPathComponent("server.log"), backup = base.appendingPathComponent("nightly.srxb")
        let export = base.appendingPathComponent("audit.ndjson")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        let cli = SafeRxCLI(keyFile: keyFile, data: data)
        // On the PostgreSQL pass the store is a database of its own (its URL in the data directory, which the CLI
        // reads): the theft then takes the database's files in the cluster, the WAL and a pg_dump as well.
        let database = try LiveServer.testDatabase(for: data, reopening: false)

        // This test reads every patient on purpose (to learn the values it then looks for), which the bundled
        // detection rules would rightly stop: it runs with a rules file that watches exports only.
        let rules = base.appendingPathComponent("exports-only-rules.json")
        try Data("""
            {"version": 1, "touchActions": ["read"], "rules": [{"id": "exports", "kind": "export", "severity": "high",
             "description": "exports only (stolen-directory test)", "actions": ["export"], "hours": "00:00-24:00", "maxPatients": 100000}]}
            """.utf8).write(to: rules)
        let server = try cli.start(["serve", "--demo", "--port", "0", "--rules", rules.path], log: log)
        defer { if server.isRunning { server.terminate() } }
        let port = try await cli.waitForPort(in: log)
        let client = TestClient(host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(60)))
        client.connect()
        try await HTTPClient(client: client).using { http in

            let creds = try JSON.parse(Data(contentsOf: data.appendingPathComponent("demo-credentials.json")))
            func password(_ user: String) -> String {
                creds.arrayValue!.first { $0["username"]?.stringValue == user }!["password"]!.stringValue!
            }
            func login(_ user: String, _ pw: String) async throws -> Reply {
                // Staff sign in with their second factor: the demo hands out each staff account's TOTP secret.
                let secret = creds.arrayValue!.first { $0["username"]?.stringValue == user }?["totp_secret"]?.stringValue
                var body: [String: JSON] = ["username": .string(user), "password": .string(pw)]
                if let key = secret.flatMap(Base32.decode) { body["otp"] = .string(TOTP(secret: key).code()) }
                return try await http.send(.post, "/auth/login", body: JSON.object(body).encodedString(), contentType: "application/json")
            }
            let pharmacist = try await login("pharmacist", password("pharmacist")).json?["access_token"]?.stringValue ?? ""
            let pharmacist2 = try await login("pharmacist2", password("pharmacist2")).json?["access_token"]?.stringValue ?? ""
            #expect(!pharmacist.isEmpty && !pharmacist2.isEmpty)

            // What the intruder must not find: every demo patient's identifying data, read through the API.
            var phi = PHINeedles()
            for token in [pharmacist, pharmacist2] {
                for type in ["Patient", "MedicationRequest"] {
                    var offset = 0
                    while true {
                        let page = try await http.get("/fhir/\(type)?_count=100&_offset=\(offset)", token: token)
                        #expect(page.status == 200)
                        for e in page.entries { phi.add(e["resource"]!) }
                        offset += 100
                        if offset >= page.total ?? 0 { break }
                    }
                }
            }
            #expect(phi.patients == 208, "200 demo patients, 3 honeytokens, 5 of the second pharmacy")
            #expect(phi.rxNumbers > 200)

            // A day of traffic that handles those values: searches by them, reads, a patient's message, a partner's new
            // patient, failed logins that type PHI as usernames, requests that carry PHI in rejected parameters.
            let sample = Array(phi.samples.prefix(25))
            for p in sample {
                for query in ["family=\(p.family.prefix(4))", "family:exact=\(p.family)&given=\(p.given)&birthdate=\(p.birthDate)",
                              "email=\(p.email)", "phone=\(p.phone)", "identifier=\(p.mrn)"] {
                    let r = try await http.get("/fhir/Patient?\(query.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed)!)", token: pharmacist)
                    #expect(r.status == 200, "\(r.issue)")
                }
                _ = try await http.get("/fhir/Patient?family=\(p.family)&bogus=\(p.email)", token: pharmacist)
                _ = try await login(p.email, "not-the-password")
            }
            let patient = try await login("patient001", password("patient001")).json?["access_token"]?.stringValue ?? ""
            let message = try await http.send(.post, "/fhir/Communication", token: patient, body: """
                {"resourceType":"Communication","status":"completed","subject":{"reference":"Patient/pat-0001"},
                 "sender":{"reference":"Patient/pat-0001"},"payload":[{"contentString":"Please ship to \(sample[0].street) instead"}]}
                """)
            #expect(message.status == 201, "\(message.body)")
            let partnerSecret = creds.arrayValue!.first { $0["client_id"] != nil }!["client_secret"]!.stringValue!
            var basic = HTTPFields()
            basic[.authorization] = "Basic " + Data("telehealth-demo:\(partnerSecret)".utf8).base64EncodedString()
            let partner = try await http.send(
                .post, "/auth/token", body: "grant_type=client_credentials", contentType: "application/x-www-form-urlencoded", headers: basic
            ).json?["access_token"]?.stringValue ?? ""
            let newPatient: JSON = .object([
                "resourceType": "Patient", "name": .array([.object(["family": "Quartermaine", "given": .array(["Evangeline"])])]),
                "birthDate": "1977-06-15", "telecom": .array([.object(["system": "email", "value": "evangeline.q@example.net"])]),
                "address": .array([.object(["line": .array(["4417 Wisteria Terrace"]), "city": "Portland", "state": "OR"])]),
            ])
            let created = try await http.send(.post, "/fhir/Patient", token: partner, body: newPatient.encodedString())
            #expect(created.status == 201, "\(created.body)")
            phi.add(created.json!)

            // While the server keeps serving: a backup and an audit export, as an operator would take them.
            let backupRun = try cli.run(["backup", "create", backup.path])
            #expect(backupRun.status == 0, "\(backupRun.output)")
            let exportRun = try cli.run(["audit", "export", "--output", export.path])
            #expect(exportRun.status == 0, "\(exportRun.output)")

            // Key rotation by another process while the server serves and writes: reads before, during and after work.
            async let rotation = Task.detached { try cli.run(["keys", "rotate", "--master", "--tenant", "--reencrypt", "--batch", "100"]) }.value
            var during: [Int] = []
            for (i, p) in sample.enumerated() {
                during.append(try await http.get("/fhir/Patient?identifier=\(p.mrn)", token: pharmacist).status)
                if i % 5 == 0 {
                    let note = try await http.send(.post, "/fhir/Communication", token: patient, body: """
                        {"resourceType":"Communication","status":"completed","subject":{"reference":"Patient/pat-0001"},
                         "sender":{"reference":"Patient/pat-0001"},"payload":[{"contentString":"Note \(i) during rotation"}]}
                        """)
                    during.append(note.status == 201 ? 200 : note.status)
                }
            }
            let rotated = try await rotation
            #expect(rotated.status == 0, "\(rotated.output)")
            #expect(during.allSatisfy { $0 == 200 }, "\(during)")
            for p in sample.prefix(5) {
                #expect(try await http.get("/fhir/Patient?identifier=\(p.mrn)", token: pharmacist).total == 1)
            }
            let thread = try await http.get("/fhir/Communication?patient=pat-0001&_count=100", token: patient)
            #expect(thread.status == 200 && (thread.total ?? 0) >= 6)
            let status = try cli.run(["keys", "status"])
            #expect(status.output.contains("resource versions still under an older data key: 0"), "\(status.output)")
            #expect(status.output.contains("keys still wrapped under an earlier master key: 0"), "\(status.output)")
            // The theft: every byte of the data directory (database, WAL, SHM, everything else) copied while the server
            // runs and again after it stopped, the backup, the export, the server's log and what the commands printed.
            func copyDirectory(_ label: String) throws -> [(String, Data)] {
                var files: [(String, Data)] = []
                for name in try FileManager.default.subpathsOfDirectory(atPath: data.path) {
                    let url = data.appendingPathComponent(name)
                    var isDir: ObjCBool = false
                    if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), !isDir.boolValue {
                        files.append(("\(label)/\(name)", try Data(contentsOf: url)))
                    }
                }
                return files
            }
            var loot = try copyDirectory("data (live)")
            if database == nil {
                #expect(loot.contains { $0.0 == "data (live)/saferx.sqlite-wal" && $0.1.count > 0 }, "the live WAL is part of the theft")
            } else {
                loot += try PostgreSQLLoot.take(database!, label: "live")
            }
            server.terminate()
            server.waitUntilExit()
            loot += try copyDirectory("data (stopped)")
            if let database {
                loot += try PostgreSQLLoot.take(database, label: "stopped")
                #expect(loot.contains { $0.0.hasPrefix("pg_dump") && $0.1.count > 100_000 }, "a pg_dump is part of the theft")
            } else {
                #expect(loot.contains { $0.0 == "data (stopped)/saferx.sqlite" })
            }
            loot.append(("backup", try Data(contentsOf: backup)))
            loot.append(("audit export", try Data(contentsOf: export)))
            loot.append(("server log", try Data(contentsOf: log)))
            loot.append(("command output", Data((backupRun.output + exportRun.output + rotated.output + status.output).utf8)))
            #expect(loot.reduce(0) { $0 + $1.1.count } > 1_000_000)
            // The scanner finds what it looks for: plaintext demo JSON would be caught.
            #expect(!phi.scan(newPatient.encodedBytes().withUnsafeBufferPointer { Data($0) }).isEmpty)
            #expect(!phi.scan(Data("name: \(sample[1].given) \(sample[1].family), born \(sample[1].birthDate.usDate)".utf8)).isEmpty)

            // Words PostgreSQL ships in every database (ICU collation descriptions such as "English (Diego Garcia)",
            // which CREATE DATABASE also copies through the WAL) are no finding when a demo name happens to be one:
            // they are read from template1, which SafeRx never writes.
            var shipped = Set<String>()
            if database != nil, let cluster = ProcessInfo.processInfo.environment["SAFERX_TEST_POSTGRES_DATA"] {
                let template = URL(fileURLWithPath: cluster).appendingPathComponent("base/1")
                for f in (FileManager.default.enumerator(at: template, includingPropertiesForKeys: nil)?.allObjects as? [URL] ?? []) {
                    if let d = try? Data(contentsOf: f) { shipped.formUnion(phi.scan(d)) }
                }
            }
            var hits: [String] = []
            for (name, bytes) in loot {
                for hit in phi.scan(bytes) where !shipped.contains(hit) { hits.append("\(name): \(hit)") }
            }
            #expect(hits.isEmpty, "plaintext PHI found:\n\(hits.prefix(20).joined(separator: "\n"))")
            #expect(phi.count > 2000, "needles: \(phi.count)")
        }
    }
}

/// What a thief of a PostgreSQL store takes: a `pg_dump` of the database, and the cluster's files that hold it (the
/// database's own directory, the WAL every database shares, the server's log).
enum PostgreSQLLoot {
    static func take(_ url: String, label: String) throws -> [(String, Data)] {
        var loot: [(String, Data)] = []
        let dump = Process()
        dump.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        dump.arguments = ["pg_dump", "--dbname=\(url)"]
        let pipe = Pipe()
        dump.standardOutput = pipe
        dump.standardError = FileHandle.nullDevice
        try dump.run()
        let bytes = pipe.fileHandleForReading.readDataToEndOfFile()
        dump.waitUntilExit()
        #expect(dump.terminationStatus == 0, "pg_dump failed")
        loot.append(("pg_dump (\(label))", bytes))
        guard let cluster = ProcessInfo.processInfo.environment["SAFERX_TEST_POSTGRES_DATA"] else { return loot }
        let db = try PostgreSQLDatabase(url: url, connections: 2)
        defer { try? db.close() }
        let oid = try #require(try db.read { try Int64.fetchOne($0, sql: "SELECT CAST(oid AS bigint) FROM pg_database WHERE datname = current_database()") })
        let root = URL(fileURLWithPath: cluster)
        for sub in ["base/\(oid)", "pg_wal", "server.log"] {
            let top = root.appendingPathComponent(sub)
            let files = (FileManager.default.enumerator(at: top, includingPropertiesForKeys: [.isRegularFileKey])?.allObjects as? [URL] ?? []) + [top]
            for f in files where (try? f.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
                if let d = try? Data(contentsOf: f) { loot.append(("cluster (\(label))/\(f.path.dropFirst(root.path.count))", d)) }
            }
        }
        #expect(loot.count > 10, "the database's files were read")
        return loot
    }
}

/// The identifying values of the demo patients, and a scanner that looks for them in raw bytes.
struct PHINeedles {
    struct Sample {
        var family = "", given = "", birthDate = "", email = "", phone = "", mrn = "", street = ""
    }

    private(set) var needles = Set<String>()
    private(set) var samples: [Sample] = []
    private(set) var patients = 0
    private(set) var rxNumbers = 0
    var count: Int { needles.count }

    mutating func add(_ r: JSON) {
        for ident in r["identifier"]?.arrayValue ?? [] {
            if let v = ident["value"]?.stringValue { needles.insert(v) }
        }
        guard r["resourceType"]?.stringValue == "Patient" else {
            rxNumbers += r["identifier"]?.arrayValue?.count ?? 0
            return
        }
        patients += 1
        var s = Sample()
        s.mrn = r["identifier"]?.arrayValue?.first?["value"]?.stringValue ?? ""
        for name in r["name"]?.arrayValue ?? [] {
            let family = name["family"]?.stringValue ?? ""
            s.family = family
            needles.insert(family)
            for g in name["given"]?.arrayValue ?? [] {
                let given = g.stringValue ?? ""
                s.given = given
                needles.insert(given)
                needles.insert("\(given) \(family)")
                needles.insert("\(family), \(given)")
            }
        }
        if let b = r["birthDate"]?.stringValue {
            s.birthDate = b
            needles.insert(b)
            needles.insert(b.usDate)
            needles.insert(b.replacingOccurrences(of: "-", with: ""))
        }
        for t in r["telecom"]?.arrayValue ?? [] {
            guard let v = t["value"]?.stringValue else { continue }
            needles.insert(v)
            if t["system"]?.stringValue == "phone" {
                s.phone = v
                needles.insert(v.filter(\.isNumber))
            } else {
                s.email = v
            }
        }
        for a in r["address"]?.arrayValue ?? [] {
            for line in a["line"]?.arrayValue ?? [] {
                if let l = line.stringValue {
                    s.street = l
                    needles.insert(l)
                }
            }
        }
        samples.append(s)
    }

    /// Every needle found in `bytes`. A needle counts when it stands as a whole token (delimited by bytes that
    /// are not letters, digits or `-./@+_`); needles of five characters or fewer (short given names) count only
    /// between double quotes or as part of a full name, so that random ciphertext bytes cannot produce false hits.
    func scan(_ bytes: Data) -> [String] {
        var byFirstWord: [String: [String]] = [:]
        for n in needles {
            let first = String(n.prefix { Self.isTokenByte($0.asciiValue ?? 0) })
            byFirstWord[first, default: []].append(n)
        }
        var found = Set<String>()
        bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let b = raw.bindMemory(to: UInt8.self)
            var i = 0
            let n = b.count
            while i < n {
                guard Self.isTokenByte(b[i]) else {
                    i += 1
                    continue
                }
                let start = i
                while i < n && Self.isTokenByte(b[i]) { i += 1 }
                let length = i - start
                guard length >= 3, length <= 64 else { continue }
                let token = String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
                guard let candidates = byFirstWord[token] else { continue }
                for needle in candidates {
                    let nb = Array(needle.utf8)
                    guard start + nb.count <= n else { continue }
                    guard (0..<nb.count).allSatisfy({ b[start + $0] == nb[$0] }) else { continue }
                    let end = start + nb.count
                    if end < n && Self.isTokenByte(b[end]) { continue }
                    if nb.count <= 5 {
                        guard start > 0, end < n, b[start - 1] == UInt8(ascii: "\""), b[end] == UInt8(ascii: "\"") else { continue }
                    }
                    found.insert(needle)
                }
            }
        }
        return found.sorted()
    }

    static func isTokenByte(_ c: UInt8) -> Bool {
        (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 45 || c == 46 || c == 47 || c == 64 || c == 43 || c == 95
    }
}

extension String {
    /// "1984-03-12" → "03/12/1984".
    var usDate: String {
        let p = split(separator: "-")
        return p.count == 3 ? "\(p[1])/\(p[2])/\(p[0])" : self
    }
}

extension JSON {
    func encodedString() -> String { String(decoding: encodedBytes(), as: UTF8.self) }
}

/// The real `saferx` binary, run as an operator would run it.
struct SafeRxCLI {
    let keyFile: URL
    let data: URL

    static var binary: URL {
        if let p = ProcessInfo.processInfo.environment["SAFERX_BIN"] { return URL(fileURLWithPath: p) }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug/saferx")
    }

    var environment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["SAFERX_MASTER_KEY_FILE"] = keyFile.path
        // A store of the PostgreSQL run (LiveServer.testDatabase) is in its database, not in the directory.
        if let url = try? String(contentsOf: data.appendingPathComponent("test-database.url"), encoding: .utf8) { env["SAFERX_DATABASE"] = url }
        return env
    }

    func start(_ arguments: [String], log: URL) throws -> Process {
        guard FileManager.default.isExecutableFile(atPath: Self.binary.path) else {
            throw TestError("saferx binary not found at \(Self.binary.path); build it first (scripts/test.sh does) or set SAFERX_BIN")
        }
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let out = try FileHandle(forWritingTo: log)
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = arguments + ["--data", data.path]
        p.environment = environment
        p.standardOutput = out
        p.standardError = out
        try p.run()
        return p
    }

    /// Runs a command to completion; returns its exit status and everything it printed.
    func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = arguments + ["--data", data.path]
        p.environment = environment
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    func waitForPort(in log: URL, timeout: Duration = .seconds(300)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if let range = text.range(of: "listening on http://127.0.0.1:") {
                let digits = text[range.upperBound...].prefix { $0.isNumber }
                if let port = Int(digits), port > 0 { return port }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestError("the server did not start; its log:\n\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
    }
}
