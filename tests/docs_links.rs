//! The documentation holds together: every relative link in `README.md`, `BENCHMARKS.md` and
//! `docs/*.md` names a file of the repository, and no source, script, manifest or document of the
//! repository points at material a clone does not have (the developers' reference notes).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

/// The repository's root (this package's manifest folder).
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The documents whose links are checked.
fn documents() -> Vec<PathBuf> {
    let mut found = vec![root().join("README.md"), root().join("BENCHMARKS.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    found.extend(docs);
    found
}

/// The targets of the Markdown links and images in `text`: `[label](target)` and
/// `[label]: target` reference definitions, each target without a title.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            targets.push(after[..end].to_owned());
            rest = &after[end..];
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with('[')
            && let Some((label, target)) = trimmed.split_once("]: ")
            && !label.contains(']')
        {
            targets.push(target.to_owned());
        }
    }
    targets
        .into_iter()
        .map(|t| {
            let t = t.trim();
            // `<path with spaces>` and `path "title"`.
            match t.strip_prefix('<').and_then(|t| t.split_once('>')) {
                Some((path, _)) => path.to_owned(),
                None => t.split_once(' ').map_or(t, |(path, _)| path).to_owned(),
            }
        })
        .collect()
}

/// Whether a link leaves the repository or stays in the page.
fn is_external(target: &str) -> bool {
    target.is_empty()
        || target.starts_with('#')
        || ["http://", "https://", "mailto:"]
            .iter()
            .any(|scheme| target.starts_with(scheme))
}

#[test]
fn every_relative_link_in_the_documentation_names_a_file_of_the_repository() {
    let mut broken = Vec::new();
    for document in documents() {
        let text = std::fs::read_to_string(&document).unwrap();
        let folder = document.parent().unwrap();
        for target in link_targets(&text) {
            if is_external(&target) {
                continue;
            }
            let path = target.split('#').next().unwrap_or_default();
            if !folder.join(path).exists() {
                broken.push(format!(
                    "{}: {target}",
                    document.strip_prefix(root()).unwrap().display()
                ));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// Every file of the repository with one of `extensions`, outside `target/`, `.git/` and
/// `node_modules/` (the test provider's npm packages, installed, not committed).
fn repository_files(extensions: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![root().to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap_or_default();
            if path.is_dir() {
                if name != "target" && name != ".git" && name != "node_modules" {
                    folders.push(path);
                }
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn no_file_points_at_notes_a_clone_does_not_have() {
    // Spelled in pieces, so this file does not name them itself.
    let forbidden = [
        ["shared", "/reference"].concat(),
        ["SPEC", ".md"].concat(),
        ["SECURITY", ".md"].concat(),
    ];
    let mut found = Vec::new();
    for file in repository_files(&["rs", "md", "sh", "toml", "proto"]) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for (number, line) in text.lines().enumerate() {
            for word in &forbidden {
                if line.contains(word.as_str()) {
                    found.push(format!(
                        "{}:{}: {word}",
                        file.strip_prefix(root()).unwrap().display(),
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "files mention notes that are not in the repository:\n{}",
        found.join("\n")
    );
}

#[test]
fn links_are_read_from_inline_and_reference_forms() {
    let text = "See [a](docs/a.md#part) and ![b](<img b.png> \"B\").\n\
                ```\n[not](a-link.md)\n```\n[ref]: BENCHMARKS.md\n";
    assert_eq!(
        link_targets(text),
        ["docs/a.md#part", "img b.png", "BENCHMARKS.md"]
    );
    assert!(is_external("https://example.org") && is_external("#top"));
}

/// The event ids a crate declares in its `events.rs` (`pub const NAME: &str = "eventId";`).
fn declared_events() -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let file = entry.unwrap().path().join("src").join("events.rs");
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for line in text.lines() {
            let line = line.trim();
            if !(line.starts_with("pub const ") && line.contains(": &str = \"")) {
                continue;
            }
            let value = line.split('"').nth(1).unwrap();
            found.push((file.clone(), value.to_owned()));
        }
    }
    found
}

#[test]
fn every_event_a_daemon_logs_is_explained_for_operators() {
    let operations = std::fs::read_to_string(root().join("docs/operations.md")).unwrap();
    let events = declared_events();
    assert!(events.len() > 20, "too few event ids found: {events:?}");
    let missing: Vec<String> = events
        .iter()
        .filter(|(_, id)| !operations.contains(&format!("`{id}`")))
        .map(|(file, id)| format!("{id} ({})", file.display()))
        .collect();
    assert!(
        missing.is_empty(),
        "event ids missing from docs/operations.md: {missing:?}"
    );
}
