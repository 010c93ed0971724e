import Foundation
import Mustache

/// Renders the web front's pages from the Mustache templates bundled with this module (`Resources/Templates`), and
/// serves its static files (`Resources/Static`: one stylesheet, no script). Values are HTML-escaped by Mustache's
/// `{{name}}`; templates never use the unescaped forms except for SVG the server drew itself (``SVGChart``).
public struct Pages: Sendable {
    public enum LoadError: Error, CustomStringConvertible {
        case missing(String)
        case template(String)
        public var description: String {
            switch self {
            case .missing(let what): "The web front's \(what) are missing from the installation"
            case .template(let why): "A web template does not parse: \(why)"
            }
        }
    }

    let library: MustacheLibrary
    let staticFiles: [String: (data: Data, type: String)]

    /// Loads every template and static file; fails (and the server refuses to start) if any is missing or broken.
    public static func load() async throws -> Pages {
        guard let root = Bundle.module.resourceURL else { throw LoadError.missing("resources") }
        let templates = root.appendingPathComponent("Templates")
        guard FileManager.default.fileExists(atPath: templates.path) else { throw LoadError.missing("templates") }
        let library: MustacheLibrary
        do {
            library = try await MustacheLibrary(directory: templates.path)
        } catch {
            throw LoadError.template("\(error)")
        }
        for name in ["layout", "error"] where library.getTemplate(named: name) == nil { throw LoadError.missing("template \(name)") }
        var files: [String: (Data, String)] = [:]
        let staticDir = root.appendingPathComponent("Static")
        let types = ["css": "text/css; charset=utf-8", "svg": "image/svg+xml", "png": "image/png", "ico": "image/x-icon", "js": "text/javascript; charset=utf-8"]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: staticDir.path)) ?? [] {
            let url = staticDir.appendingPathComponent(name)
            guard let data = try? Data(contentsOf: url), let type = types[url.pathExtension] else { continue }
            files[name] = (data, type)
        }
        guard files["saferx.css"] != nil else { throw LoadError.missing("stylesheet") }
        return Pages(library: library, staticFiles: files)
    }

    /// The HTML of a page: the named template rendered with `values` (a dictionary of strings, numbers, booleans,
    /// arrays and dictionaries). A missing template renders the error page rather than nothing.
    public func render(_ template: String, _ values: [String: Any]) -> String {
        library.render(values, withTemplate: template)
            ?? library.render(["title": "Error", "message": "This page is not available."], withTemplate: "error") ?? ""
    }

    /// A static file by name (`saferx.css`), with its content type.
    public func staticFile(_ name: String) -> (data: Data, type: String)? { staticFiles[name] }
}
