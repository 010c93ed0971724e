import ArgumentParser
import Foundation
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStoreCore

/// API clients (partners and business lines): created, listed, disabled and given new secrets here, never as
/// password users. Every change is audited.
struct Clients: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage API clients (telehealth partners, business lines): OAuth2 client credentials.",
        subcommands: [Add.self, List.self, Disable.self, Enable.self, RotateSecret.self])

    static let clientRoles: [Role] = [.partner, .businessLine]

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add an API client. Prints its secret once.")
        @OptionGroup var data: DataOptions
        @Option(name: .customLong("client-id"), help: "Client id (letters, digits, '-', '.').") var clientID: String
        @Option(help: "Role: partner or business-line.") var role: String
        @Option(help: "Display name (shown to patients in their access log and on messages).") var name: String
        @Option(help: "Tenant (pharmacy) id.") var tenant: String = DemoPharmacy.tenant

        func validate() throws {
            guard let r = Role(rawValue: role), Clients.clientRoles.contains(r) else {
                throw ValidationError("--role '\(role.prefix(40))' is not partner or business-line (staff and patients are users: saferx users add)")
            }
            guard FHIRID.isValid(clientID) else { throw ValidationError("--client-id '\(clientID.prefix(70))' is not 1-64 letters, digits, '-' or '.'") }
            guard !name.trimmingCharacters(in: .whitespaces).isEmpty, name.count <= 100 else { throw ValidationError("--name must be 1-100 characters") }
        }

        func run() async throws {
            let secret = DemoPharmacy.randomSecret(bytes: 32)
            try await data.openPharmacy().admin.addClient(.operatorCommand(reason: "saferx clients add"), id: clientID, role: Role(rawValue: role)!, name: name, tenant: tenant, secret: secret)
            say("Added \(role) client '\(clientID)' (\(name)) in tenant \(tenant).")
            say("Client secret (shown once): \(secret)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List API clients.")
        @OptionGroup var data: DataOptions

        func run() async throws {
            say("CLIENT_ID\tROLE\tTENANT\tNAME\tSTATUS")
            for c in try await data.openPharmacy().admin.clients(.operatorCommand(reason: "saferx clients list")) {
                say("\(c.id)\t\(c.role)\t\(c.tenant)\t\(c.displayName ?? "")\t\(c.status)")
            }
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable an API client; its tokens stop working at once.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Client id.") var clientID: String

        func run() async throws { try await Clients.setDisabled(data, clientID, true) }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a disabled API client again.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Client id.") var clientID: String

        func run() async throws { try await Clients.setDisabled(data, clientID, false) }
    }

    struct RotateSecret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-secret", abstract: "Give an API client a new secret; the old secret and every token issued with it stop working.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Client id.") var clientID: String

        func run() async throws {
            let secret = DemoPharmacy.randomSecret(bytes: 32)
            try await data.openPharmacy().admin.rotateClientSecret(.operatorCommand(reason: "saferx clients rotate-secret"), id: clientID, secret: secret)
            say("New client secret for '\(clientID)' (shown once): \(secret)")
            say("The old secret and every token issued with it no longer work.")
        }
    }

    static func setDisabled(_ data: DataOptions, _ clientID: String, _ disabled: Bool) async throws {
        try await data.openPharmacy().admin.setClientDisabled(.operatorCommand(reason: "saferx clients disable"), id: clientID, disabled)
        say("\(disabled ? "Disabled" : "Enabled") client '\(clientID)'.")
    }
}
