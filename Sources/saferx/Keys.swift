import ArgumentParser
import Foundation
import SafeRxPharmacy
import SafeRxStoreCore

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect and rotate the key hierarchy (master key, tenant keys, patient data keys).",
        subcommands: [Status.self, Rotate.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show key versions and any unfinished re-encryption.")
        @OptionGroup var data: DataOptions

        func run() async throws {
            let pharmacy = try await data.openPharmacy()
            let s = try await pharmacy.keys.status(.operatorCommand(reason: "saferx keys status"))
            say("master key: \(s.masterKeyID) (\(data.keyFileURL.path))")
            for t in s.tenants { say("tenant \(t.tenant): tenant key v\(t.version), \(t.dataKeys) data keys (\(t.retired) retired versions kept)") }
            say("resource versions still under an older data key: \(s.pending)")
            say("keys still wrapped under an earlier master key: \(s.underOtherMasterKeys)"
                + (s.underOtherMasterKeys == 0 ? " (no earlier master key file is needed by this store)" : " (keep the earlier key file)"))
            say("erased patients: \(s.erased)")
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rotate keys while the server keeps serving.",
            discussion: """
                --master     new master key; tenant and service keys are re-wrapped, no data is touched. The old key is \
                kept as <key file>.previous-<id> (and <key file>.previous names the latest): a backup opens with the \
                key it was made under, so delete such a file only once no backup made under that key is kept.
                --tenant     new tenant keys; every patient data key is re-wrapped, no data is touched.
                --reencrypt  new data key versions; every stored resource version is re-encrypted in small \
                transactions, with a progress bar, then every other sealed value (usernames, MFA secrets, \
                notifications, webhook secrets, honeytoken ids, letter contacts). Interrupted runs resume. An old \
                version is destroyed only after a pass over every sealed column shows that nothing names it.
                Several may be given; they run in that order.
                """)
        @OptionGroup var data: DataOptions
        @Flag(help: "Re-wrap tenant and service keys under a new master key.") var master = false
        @Flag(help: "Give every tenant a new tenant key and re-wrap its data keys.") var tenant = false
        @Option(help: "With --tenant: rotate only this tenant.") var tenantID: String?
        @Flag(help: "Re-encrypt all data under new data key versions.") var reencrypt = false
        @Option(help: "With --reencrypt: resource versions per transaction.") var batch = 500

        func validate() throws {
            guard master || tenant || reencrypt else { throw ValidationError("Name what to rotate: --master, --tenant and/or --reencrypt") }
            if tenantID != nil && !tenant { throw ValidationError("--tenant-id needs --tenant") }
            guard (1...10_000).contains(batch) else { throw ValidationError("--batch must be 1-10000") }
        }

        func run() async throws {
            let pharmacy = try await data.openPharmacy()
            let ctx = AccessContext.operatorCommand(reason: "saferx keys rotate", write: true)
            try await pharmacy.signing {
                if master {
                    let r = try await pharmacy.keys.rotateMaster(ctx)
                    say("Master key rotated: \(r.old) -> \(r.new); \(r.rewrapped) tenant and service keys re-wrapped.")
                    say("The previous key is kept as \(data.keyFileURL.path).previous-\(r.old.replacingOccurrences(of: "file:", with: "")) "
                        + "(and .previous): delete it only once no backup made before now is kept.")
                }
                if tenant {
                    let rotated = try await pharmacy.keys.rotateTenantKeys(ctx, only: tenantID)
                    if let tenantID, rotated.isEmpty { throw CLIError("No keys for tenant '\(tenantID)'") }
                    for r in rotated {
                        say("Tenant \(r.tenant): tenant key v\(r.version); \(r.rewrapped) patient data keys re-wrapped.")
                    }
                }
                if reencrypt {
                    let bar = ProgressBar(label: "re-encrypting")
                    let r = try await pharmacy.keys.reencrypt(ctx, batchSize: batch) { done, total in bar.update(done, total) }
                    bar.finish()
                    say(String(
                        format: "Re-encrypted %d resource versions and %d other sealed values (usernames, MFA secrets, notifications, "
                            + "webhook secrets, honeytoken ids, letter contacts) in %.1f s (%.0f resources/s); %@; %d old data key versions destroyed.",
                        r.resources, r.otherValues, r.seconds, Double(r.resources) / max(r.seconds, 0.001),
                        (r.rotatedKeys == 0 ? "resumed an unfinished run" : "\(r.rotatedKeys) data keys rotated") as NSString, r.retiredKeys))
                    if r.keptKeys > 0 {
                        say("\(r.keptKeys) old data key versions were kept: some sealed value still needs them. Run the command again to finish.")
                    }
                }
            }
        }
    }
}

/// A one-line progress bar on standard error (redrawn in place on a terminal, a line per 10 % otherwise).
final class ProgressBar: @unchecked Sendable {
    let label: String
    let tty = isatty(STDERR_FILENO) != 0
    let lock = NSLock()
    var lastTenth = -1

    init(label: String) {
        self.label = label
    }

    func update(_ done: Int, _ total: Int) {
        lock.lock()
        defer { lock.unlock() }
        let fraction = total == 0 ? 1 : Double(done) / Double(total)
        let width = 30
        let filled = Int(fraction * Double(width))
        let line = "\(label) [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: width - filled))] "
            + String(format: "%3.0f%% %d/%d", fraction * 100, done, total)
        if tty {
            FileHandle.standardError.write(Data(("\r" + line).utf8))
        } else if Int(fraction * 10) != lastTenth {
            lastTenth = Int(fraction * 10)
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    func finish() {
        if tty { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

struct Patients: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Patient-level operations.", subcommands: [Erase.self])

    struct Erase: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Crypto-shred a patient: destroy their data key, leave a tombstone, keep audit ids.",
            discussion: """
                Refused while a retention hold applies (dispense records younger than --retention-years) unless \
                --legal-override is given; the erasure, the reason and any override are audited. Backups made before \
                the erasure still hold the patient's wrapped key until they expire.
                """)
        @OptionGroup var data: DataOptions
        @Argument(help: "Patient id.") var id: String
        @Option(help: "Why (recorded in the audit log).") var reason: String
        @Option(help: "Tenant the patient belongs to.") var tenant = "demo-pharmacy"
        @Option(help: "Years dispense records must be kept.") var retentionYears = 10
        @Flag(help: "Erase despite a retention hold (the --reason must name the legal basis).") var legalOverride = false

        func validate() throws {
            guard reason.trimmingCharacters(in: .whitespaces).count >= 3 else { throw ValidationError("--reason must say why") }
            guard (0...100).contains(retentionYears) else { throw ValidationError("--retention-years must be 0-100") }
        }

        func run() async throws {
            let pharmacy = try await data.openPharmacy()
            do {
                let r = try await pharmacy.keys.erase(
                    .operatorCommand(reason: "saferx patients erase", tenant: tenant, write: true), patient: id, reason: reason,
                    legalOverride: legalOverride, retentionYears: retentionYears)
                say("Erased Patient/\(r.patient) in \(r.tenant): data key destroyed, tenant key rotated; \(r.resources) resources "
                    + "(\(r.versions) versions) left as tombstones; \(plural(r.accounts, "account")) removed"
                    + (r.legalOverride ? "; retention hold overridden" : "") + ". Audit record \(r.auditSequence).")
                if r.sharedResources > 0 {
                    say("Kept \(r.sharedResources) resources that also belong to another patient's record.")
                }
                if !r.walTruncated {
                    say("Note: the write-ahead log was busy and will be truncated at the next checkpoint.")
                }
            } catch let e as ErasureError {
                throw CLIError("\(e)")
            }
        }
    }
}

struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup", abstract: "Encrypted, integrity-protected backups.", subcommands: [Create.self, Verify.self, Restore.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a consistent online snapshot, encrypted under a key wrapped by the master key (the server may keep running).")
        @OptionGroup var data: DataOptions
        @Argument(help: "Backup file to write (mode 0600).") var file: String

        func run() async throws {
            let pharmacy = try await data.openPharmacy()
            let r = try await pharmacy.keys.backup(.operatorCommand(reason: "saferx backup create"), to: URL(fileURLWithPath: file))
            say("Backup written to \(file): \(r.bytes) bytes in \(r.chunks) encrypted chunks, master key \(pharmacy.keys.masterKeyID).")
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decrypt and check a backup: every chunk, the database, the audit chain and every ciphertext. Exit 1 if bad.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Backup file.") var file: String

        func run() async throws {
            do {
                let s = try await KeyAdministration.verifyBackup(URL(fileURLWithPath: file), keyFile: data.keyFileURL)
                say("OK: backup of \(s.created), \(s.patients) patients, \(s.resources) resource versions decrypt, "
                    + "audit chain of \(s.auditRecords) records and \(s.checkpoints) signed checkpoints verifies.")
            } catch {
                say("FAILED: \(error)")
                throw ExitCode(1)
            }
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Restore a backup into a new data directory (given with --data), or a new PostgreSQL database (--database), and check it.",
            discussion: "A backup of either engine restores on either: this is also how a SQLite store moves to PostgreSQL.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Backup file.") var file: String

        func run() async throws {
            do {
                let s = try await KeyAdministration.restoreBackup(URL(fileURLWithPath: file), to: data.url, database: data.database, keyFile: data.keyFileURL)
                say("Restored backup of \(s.created) into \(data.database == nil ? data.url.path : data.storeLocation): \(s.patients) patients, \(s.resources) resource versions, "
                    + "audit chain of \(s.auditRecords) records verifies.")
            } catch {
                throw CLIError("Restore failed, nothing was written: \(error)")
            }
        }
    }
}
