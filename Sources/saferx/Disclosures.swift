import ArgumentParser
import Foundation
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStoreCore

/// `saferx disclosures --patient ID`: the accounting of disclosures (HIPAA §164.528) for staff.
struct Disclosures: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Accounting of disclosures of one patient: every disclosure outside treatment, payment and operations.",
        discussion: "--all lists every access to the patient's record instead (staff by role and pharmacy).")
    @OptionGroup var data: DataOptions
    @Option(help: "Patient id.") var patient: String
    @Option(help: "Tenant (pharmacy).") var tenant = "demo-pharmacy"
    @Option(help: "Years to look back.") var years = 6
    @Flag(help: "Every access, not only disclosures.") var all = false

    func run() async throws {
        let pharmacy = try await data.openPharmacy()
        let since = Instant.yearsAgo(years)
        // A system job for one pharmacy: the gate checks the right and records the read of the audit trail itself.
        let ctx = AccessContext.system(reason: all ? "saferx disclosures --all" : "saferx disclosures", tenant: tenant)
        let entries = try await pharmacy.privacy.accessLog(ctx, patient: patient, everyAccess: all, years: years)
        say("\(all ? "Accesses to" : "Disclosures of") Patient/\(patient) in \(tenant) since \(since.prefix(10)): \(entries.count)")
        say("DATE\tRECIPIENT\tPURPOSE\tACTION\tRESOURCE\tDISCLOSED\tAUDIT")
        for e in entries {
            say("\(e.time)\t\(e.recipient)\t\(e.purpose)\t\(e.action)\t\(e.resource)\t\(e.detail)\t\(e.seq)")
        }
    }
}

/// `saferx break-glass report`: the daily report of break-glass overrides.
struct BreakGlass: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "break-glass", abstract: "Break-glass overrides.", subcommands: [Report.self])

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every override granted on a day (UTC), with its reason and the requests made under it.")
        @OptionGroup var data: DataOptions
        @Option(help: "Day, YYYY-MM-DD (default: today, UTC).") var date: String?
        @Option(help: "Tenant, or * for all.") var tenant = "*"

        func run() async throws {
            let day = date ?? String(Instant.now().prefix(10))
            guard day.count == 10, CivilDate(day) != nil else { throw ValidationError("--date '\(day.prefix(40))' is not a date like 2026-12-01 (YYYY-MM-DD)") }
            let pharmacy = try await data.openPharmacy()
            let grants = try await pharmacy.privacy.breakGlassReport(.system(reason: "saferx break-glass report", tenant: tenant), day: day)
            say("Break-glass overrides on \(day): \(grants.count)")
            say("GRANTED\tEXPIRES\tUSER\tROLE\tPATIENT\tACCESSES\tREASON")
            var names = ActorNames(pharmacy)
            for g in grants {
                say("\(g.granted)\t\(g.expires)\t\(await names.name(g.userID))\t\(g.role)\tPatient/\(g.patientID)\t\(g.accesses)\t\(g.reason)")
            }
        }
    }
}
