import ArgumentParser
import Foundation
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStoreCore
import SafeRxVault

/// `saferx fulfillment ...`: shipping manifests for fulfillment vendors, encrypted to each vendor's key.
struct Fulfillment: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fulfillment vendors: encrypted shipping manifests, returned tracking files, and who was in a file.",
        subcommands: [VendorAdd.self, Keygen.self, Export.self, Patients.self, Import.self, Decrypt.self])

    struct VendorAdd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "vendor-add", abstract: "Register a vendor and its X25519 public key.")
        @OptionGroup var data: DataOptions
        @Option(help: "Vendor id.") var id: String
        @Option(help: "Vendor name.") var name: String
        @Option(help: "The vendor's raw 32-byte X25519 public key, base64 (from the vendor, or `fulfillment keygen`).") var publicKey: String
        @Option(help: "Tenant (pharmacy).") var tenant = "demo-pharmacy"

        func run() async throws {
            guard let key = Data(base64Encoded: publicKey) else { throw ValidationError("--public-key '\(publicKey.prefix(16))…' is not base64 (give the vendor's X25519 public key as printed by saferx fulfillment keygen)") }
            try await data.openPharmacy().fulfillment.addVendor(.operatorCommand(reason: "saferx fulfillment vendor-add", write: true), id: id, tenant: tenant, name: name, publicKey: key)
            say("Vendor \(id) added; manifests for it are encrypted to its key.")
        }
    }

    struct Keygen: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make an X25519 key pair (what a vendor does once): writes the private key (mode 0600), prints the public key.")
        /// Accepted like every subcommand's (docs/privacy.md passes it); the key pair touches no store.
        @OptionGroup var data: DataOptions
        @Option(help: "Where to write the private key.") var out: String

        func run() async throws {
            guard !FileManager.default.fileExists(atPath: out) else { throw CLIError("\(out) exists; not overwriting a key") }
            let (privateKey, publicKey) = SealedFile.newKeyPair()
            guard FileManager.default.createFile(atPath: out, contents: Data(privateKey.base64EncodedString().utf8), attributes: [.posixPermissions: 0o600]) else {
                throw CLIError("Cannot write \(out)")
            }
            say("Private key: \(out) (mode 0600; stays with the vendor)")
            say("Public key: \(publicKey.base64EncodedString())")
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the day's shipping manifest (fills verified that day, not yet shipped) for a vendor, encrypted to its key.",
            discussion: "Columns: \(FulfillmentService.manifestColumns.joined(separator: ",")). The file is never written in clear; its SHA-256 and every patient in it are audited.")
        @OptionGroup var data: DataOptions
        @Option(help: "Vendor id.") var vendor: String
        @Option(help: "Day, YYYY-MM-DD (default: today, UTC).") var date: String?
        @Option(help: "Tenant (pharmacy).") var tenant = "demo-pharmacy"
        @Option(help: "Output file.") var out: String

        func run() async throws {
            let day = date ?? String(Instant.now().prefix(10))
            let ctx = AccessContext.system(reason: "fulfillment export", tenant: tenant, agent: "saferx fulfillment export")
            let result = try await data.openPharmacy().fulfillment.exportManifest(ctx, vendor: vendor, day: day)
            guard FileManager.default.createFile(atPath: out, contents: result.file, attributes: [.posixPermissions: 0o600]) else {
                throw CLIError("Cannot write \(out)")
            }
            say("Wrote \(out): \(result.rows) \(result.rows == 1 ? "shipment" : "shipments") for \(vendor) on \(day), encrypted to the vendor's key (sha256 \(result.sha256)).")
            if result.alreadySent > 0 {
                say("\(result.alreadySent) verified \(result.alreadySent == 1 ? "fill was" : "fills were") left out: already sent in an earlier file (no duplicate shipments).")
            }
        }
    }

    struct Patients: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Which export a file is, and every patient in it (breach scope for a file found where it should not be).")
        @OptionGroup var data: DataOptions
        @Argument(help: "The file (or its SHA-256 with --sha256).") var file: String
        @Flag(help: "The argument is the file's SHA-256, not a path.") var sha256 = false

        func run() async throws {
            let digest: String
            if sha256 {
                digest = file.lowercased()
            } else {
                guard let bytes = FileManager.default.contents(atPath: file) else { throw CLIError("Cannot read \(file)") }
                digest = SealedFile.digest(bytes)
            }
            let f = try await data.openPharmacy().fulfillment.file(.operatorCommand(reason: "saferx fulfillment file"), sha256: digest)
            say("Export to \(f.vendor) of \(f.day) (\(f.tenant)), written \(f.created), audit record \(f.auditSeq): \(f.patients.count) patients")
            for p in f.patients { say("Patient/\(p)") }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply a vendor's returned tracking file: order_id,carrier,tracking_number (header first); each fill is marked shipped.")
        @OptionGroup var data: DataOptions
        @Option(help: "Tenant (pharmacy).") var tenant = "demo-pharmacy"
        @Argument(help: "CSV file.") var file: String

        func run() async throws {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw CLIError("Cannot read \(file)") }
            // Line numbers are the file's own (blank lines count), so an operator finds the line in an editor.
            var lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map(String.init).enumerated()
                .filter { !$0.element.trimmingCharacters(in: .whitespaces).isEmpty }.map { (number: $0.offset + 1, text: $0.element) }
            guard lines.first?.text.lowercased().replacingOccurrences(of: " ", with: "").hasPrefix("order_id,carrier,tracking_number") == true else {
                throw CLIError("The first line must be the header order_id,carrier,tracking_number")
            }
            lines.removeFirst()
            let ctx = AccessContext.system(
                reason: "fulfillment tracking \(URL(fileURLWithPath: file).lastPathComponent)", tenant: tenant, write: true, agent: "saferx fulfillment import")
            // The whole file is checked before anything is applied: a bad line changes nothing.
            let rows = try lines.map { (number, line) in
                let f = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                guard f.count == 3 else { throw CLIError("Line \(number): expected 3 fields (order_id,carrier,tracking_number), got \(f.count)") }
                guard Shipment.carriers.contains(f[1].lowercased()) else {
                    throw CLIError("Line \(number): carrier '\(f[1].prefix(40))' is not one of \(Shipment.carriers.sorted().joined(separator: ", "))")
                }
                return (number: number, fields: f)
            }
            // The same file applied again: a fill already shipped with this tracking number is not an error.
            let (shipped, already, refused) = try await data.openPharmacy().fulfillment.applyVendorTracking(
                ctx, rows.map { .init(line: $0.number, dispense: $0.fields[0], carrier: $0.fields[1].lowercased(), trackingNumber: $0.fields[2]) })
            for r in refused { say("Line \(r.line): \(r.dispense): \(r.why)") }
            say("Marked \(shipped) of \(lines.count) fills shipped\(already > 0 ? "; \(already) already shipped with the same tracking number (unchanged)" : "").")
        }
    }

    struct Decrypt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decrypt a manifest with the vendor's private key (the vendor's side; any RFC 9180 HPKE library works too).")
        @Option(help: "The vendor's private key file (from keygen).") var privateKey: String
        @Argument(help: "The encrypted file.") var file: String

        func run() async throws {
            guard let keyText = try? String(contentsOfFile: privateKey, encoding: .utf8),
                let key = Data(base64Encoded: keyText.trimmingCharacters(in: .whitespacesAndNewlines)),
                let bytes = FileManager.default.contents(atPath: file)
            else { throw CLIError("Cannot read \(privateKey) or \(file)") }
            do {
                let (_, csv) = try SealedFile.open(bytes, privateKey: key)
                FileHandle.standardOutput.write(csv)
            } catch {
                throw CLIError("\(error)")
            }
        }
    }
}
