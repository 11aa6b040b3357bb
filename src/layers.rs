//! The layering rule, checked: every module imports only from modules in layers below its
//! own, as the list in `src/lib.rs`'s documentation declares (the README shows the same
//! list). Scans `src/` for `crate::<module>` paths outside test code and comments. Also
//! keeps the README's structure section listing every integration test module.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

/// The layers of `lib.rs`'s list, top first: the backticked module names of each numbered
/// line (`//! 3. `app`, `check`: …`).
fn declared_layers(lib_rs: &str) -> Vec<Vec<String>> {
    let line = Regex::new(r"^//! *[0-9]+\. (.*?):").unwrap();
    let name = Regex::new(r"`([a-z_]+)`").unwrap();
    lib_rs
        .lines()
        .filter_map(|l| line.captures(l))
        .map(|c| name.captures_iter(&c[1]).map(|n| n[1].to_owned()).collect())
        .collect()
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether an attribute line gates the next item on `test` (`#[cfg(test)]`,
/// `#[cfg(any(test, …))]`).
fn is_test_gate(line: &str) -> bool {
    let line = line.trim();
    line == "#[cfg(test)]" || line.starts_with("#[cfg(any(test")
}

/// The lines of `text` outside test-gated items, with the names of the modules such items
/// declare in other files (`#[cfg(test)] mod tests;`). Items end, as rustfmt writes them, on
/// their line ending in `;` or at the `}` at their own indentation.
fn production_lines(text: &str) -> (Vec<&str>, Vec<String>) {
    let lines: Vec<&str> = text.lines().collect();
    let mut kept = Vec::new();
    let mut test_modules = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !is_test_gate(lines[i]) {
            kept.push(lines[i]);
            i += 1;
            continue;
        }
        let indent = lines[i].len() - lines[i].trim_start().len();
        i += 1;
        while i < lines.len() && lines[i].trim_start().starts_with("#[") {
            i += 1;
        }
        let Some(item) = lines.get(i) else { break };
        if item.trim_end().ends_with(';') {
            let words: Vec<&str> = item.split_whitespace().collect();
            if let Some(at) = words.iter().position(|w| *w == "mod") {
                test_modules.push(words[at + 1].trim_end_matches(';').to_owned());
            }
            i += 1;
            continue;
        }
        let end = format!("{}}}", " ".repeat(indent));
        while i < lines.len() && lines[i].trim_end() != end {
            i += 1;
        }
        i += 1;
    }
    (kept, test_modules)
}

/// Where `mod name;` declared in `file` lives: `name.rs` or `name/mod.rs` next to a `mod.rs`
/// or `lib.rs`, else in the folder named after `file`.
fn module_files(file: &Path, name: &str) -> [PathBuf; 2] {
    let dir = match file.file_name().and_then(|n| n.to_str()) {
        Some("mod.rs" | "lib.rs") => file.parent().unwrap().to_path_buf(),
        _ => file.with_extension(""),
    };
    [
        dir.join(format!("{name}.rs")),
        dir.join(name).join("mod.rs"),
    ]
}

/// The top-level module a file of `src/` belongs to (`None`: `lib.rs`, `main.rs`).
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let first = file.strip_prefix(src).ok()?.components().next()?;
    let first = first.as_os_str().to_str()?;
    match first {
        "lib.rs" | "main.rs" => None,
        _ => Some(first.trim_end_matches(".rs").to_owned()),
    }
}

/// The top-level modules that the `crate::` paths of `code` name, each with the index of the
/// line it starts on: `crate::a::b` names `a`; `crate::{a, b::{c, d}}`, on one line or
/// several, names `a` and `b`.
fn crate_uses(code: &str) -> Vec<(usize, String)> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut uses = Vec::new();
    for (start, _) in code.match_indices("crate::") {
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let line = code[..start].matches('\n').count();
        let rest = &code[start + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            uses.push((line, ident(rest)));
            continue;
        };
        // The names at the group's own depth: at its start and after each of its commas.
        let mut depth = 0;
        let mut next = Some(0);
        for (at, c) in group.char_indices() {
            if let Some(from) = next.take() {
                let name = ident(&group[from..]);
                if !name.is_empty() {
                    uses.push((line, name));
                }
            }
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => next = Some(at + 1),
                _ => {}
            }
        }
    }
    uses
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib_rs = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let layers = declared_layers(&lib_rs);
    let mut layer_of: BTreeMap<String, usize> = BTreeMap::new();
    for (depth, modules) in layers.iter().enumerate() {
        for module in modules {
            assert!(
                layer_of.insert(module.clone(), depth).is_none(),
                "`{module}` is in two layers of lib.rs's list"
            );
        }
    }
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    // Test-only files: those of test-gated modules, and everything below them.
    let mut test_only: BTreeSet<PathBuf> = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for name in production_lines(&text).1 {
            test_only.extend(module_files(file, &name));
        }
    }
    let is_test_only = |file: &Path| {
        test_only
            .iter()
            .any(|t| file == t || file.starts_with(t.with_extension("")))
    };
    let mut upward = Vec::new();
    for file in &files {
        let Some(module) = top_module(&src, file) else {
            continue;
        };
        if is_test_only(file) && !layer_of.contains_key(&module) {
            continue;
        }
        let Some(&depth) = layer_of.get(&module) else {
            panic!("module `{module}` is in no layer of lib.rs's list: add it where it belongs");
        };
        if is_test_only(file) {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let code: Vec<&str> = production_lines(&text)
            .0
            .into_iter()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect();
        for (line, used) in crate_uses(&code.join("\n")) {
            if used == module {
                continue;
            }
            match layer_of.get(&used) {
                Some(&below) if below > depth => {}
                _ => upward.push(format!(
                    "{}: `{module}` (layer {}) uses crate::{used} (layer {}): {}",
                    file.strip_prefix(&src).unwrap().display(),
                    depth + 1,
                    layer_of
                        .get(&used)
                        .map_or("?".to_owned(), |l| (l + 1).to_string()),
                    code[line].trim()
                )),
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that do not point down the layers:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_readme_shows_the_layers_of_lib_rs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib_rs = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let layers = declared_layers(&lib_rs);
    assert!(layers.len() > 5, "{layers:?}");
    for line in lib_rs
        .lines()
        .filter(|l| Regex::new(r"^//! *[0-9]+\. ").unwrap().is_match(l))
    {
        let entry = line.trim_start_matches("//!").trim();
        assert!(
            readme.lines().any(|r| r.trim() == entry),
            "README.md lacks the layer line {entry:?} of src/lib.rs"
        );
    }
}

#[test]
fn the_readme_lists_every_integration_test_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let main_rs = std::fs::read_to_string(root.join("tests/integration/main.rs")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let module = Regex::new(r"(?m)^mod ([a-z_]+);").unwrap();
    let modules: Vec<&str> = module
        .captures_iter(&main_rs)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    assert!(modules.len() > 10, "{modules:?}");
    for name in modules {
        let entry = format!("{name}.rs ");
        assert!(
            readme.lines().any(|l| l.trim_start().starts_with(&entry)),
            "README.md's structure section lacks tests/integration/{name}.rs"
        );
    }
}

#[test]
fn the_scanner_skips_test_code_and_finds_test_modules() {
    let text = "use crate::a::X;\n#[cfg(test)]\nmod tests;\n#[cfg(any(test, feature = \"t\"))]\npub mod fake;\nfn f() {}\n#[cfg(test)]\n#[allow(x)]\nmod inline {\n    use crate::b;\n    fn g() {\n    }\n}\nuse crate::c;\nimpl S {\n    #[cfg(test)]\n    pub fn t() {\n        crate::d::e();\n    }\n    fn h() {}\n}\n";
    let (kept, modules) = production_lines(text);
    assert_eq!(modules, ["tests", "fake"]);
    assert_eq!(
        kept,
        [
            "use crate::a::X;",
            "fn f() {}",
            "use crate::c;",
            "impl S {",
            "    fn h() {}",
            "}"
        ]
    );
    let uses = crate_uses(
        "use crate::a::X;\nlet x = crate::b(1);\nuse crate::{\n    c::{D, E},\n    f,\n};\nuse other_crate::g;\n$crate::h!();",
    );
    let named: Vec<(usize, &str)> = uses.iter().map(|(l, m)| (*l, m.as_str())).collect();
    assert_eq!(named, [(0, "a"), (1, "b"), (2, "c"), (2, "f")]);
    assert_eq!(
        declared_layers(
            "//! 1. `cli`: the command line\n//! 2. `app`, `check`: commands\n//! text"
        ),
        [
            vec!["cli".to_owned()],
            vec!["app".to_owned(), "check".to_owned()]
        ]
    );
}
