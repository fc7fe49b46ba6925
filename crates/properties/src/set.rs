//! The layered property sources of one module ([`PropertySet`]) and the values they hold
//! ([`Value`]).
//!
//! Precedence is Spring Boot's: properties files, then environment variables, then `--name=value`
//! arguments; a later source of the same kind beats an earlier one. Lookups take canonical dashed
//! names and match relaxed spellings (see the `name` module). Loading a source is all or
//! nothing: a file with a syntax error leaves the set as it was and returns every problem in it,
//! so a daemon can report them all at once and a reload can keep the previous configuration.
//! Which properties exist and what their values mean is for the `config` crate.

use std::fmt;
use std::hash::{Hash as _, Hasher};
use std::path::Path;
use std::sync::OnceLock;

use hashbrown::HashTable;

use crate::codes;
use crate::name::{self, Element, ElementKey, EnvWord};
use crate::problem::{Origin, Problem};
use crate::syntax::{self, SyntaxError, SyntaxErrorKind};

/// One property as one source gave it.
#[derive(Clone, PartialEq, Eq)]
pub struct Value {
    /// The name as written in its source (`isRevoked`, `ATACCAMA_SERVER_GRPC_PORT`), so messages
    /// quote what the operator typed.
    pub key: String,
    /// The value with escapes decoded and, as in Java, trailing whitespace kept; typed parsers trim.
    pub raw: String,
    /// Where it came from, for error messages.
    pub origin: Origin,
}

/// `Debug` is hand-written so that values of secret-looking properties (the generator key, passwords,
/// tokens) never reach a log through `{:?}`.
impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Value");
        out.field("key", &self.key);
        if looks_secret(&self.key) {
            out.field(
                "raw",
                &format_args!("<redacted, {} chars>", self.raw.chars().count()),
            );
        } else {
            out.field("raw", &self.raw);
        }
        out.field("origin", &self.origin).finish()
    }
}

/// Whether a property name suggests a secret value. Deliberately broad: hiding a harmless value
/// in debug output costs nothing, showing a private key costs the deployment.
fn looks_secret(key: &str) -> bool {
    const WORDS: &[&str] = &[
        "pass",
        "secret",
        "token",
        "credential",
        "private",
        "apikey",
        "api-key",
        "api_key",
    ];
    let lower = key.to_lowercase();
    WORDS.iter().any(|w| lower.contains(w)) || lower.ends_with("key")
}

/// The kinds of source, in increasing precedence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SourceKind {
    File,
    Env,
    Args,
}

/// How an entry's name compares with others.
#[derive(Clone, Debug)]
enum EntryName {
    /// A file key or argument name, as its elements compare (the spellings are re-read from
    /// the value's key when wanted: only `map_keys` wants them).
    Written { keys: Vec<ElementKey> },
    /// An environment variable, as words (see `name::env_words`).
    Env(Vec<EnvWord>),
}

/// A value together with its comparable name.
#[derive(Clone, Debug)]
struct Entry {
    value: Value,
    name: EntryName,
}

impl Entry {
    /// The entry of a file key or an argument; the value back when its key names nothing (`.`).
    fn written(value: Value) -> Result<Self, Value> {
        let keys = name::name_keys(&value.key);
        if keys.is_empty() {
            return Err(value);
        }
        Ok(Self {
            value,
            name: EntryName::Written { keys },
        })
    }

    /// Whether this entry is the property `keys`.
    fn is_named(&self, keys: &[ElementKey]) -> bool {
        match &self.name {
            EntryName::Written { keys: own } => own == keys,
            EntryName::Env(words) => name::env_matches(words, keys),
        }
    }

    /// Whether both entries name the same property.
    fn same_property(&self, other: &Entry) -> bool {
        match (&self.name, &other.name) {
            (EntryName::Written { keys }, _) => other.is_named(keys),
            (EntryName::Env(_), EntryName::Written { keys }) => self.is_named(keys),
            (EntryName::Env(a), EntryName::Env(b)) => a == b,
        }
    }

    /// Whether the entry's name starts with `prefix` (or equals it).
    fn is_under(&self, prefix: &[ElementKey]) -> bool {
        match &self.name {
            EntryName::Written { keys } => keys.starts_with(prefix),
            EntryName::Env(words) => name::env_strip_prefix(words, prefix).is_some(),
        }
    }

    /// The index `n` if this entry is exactly the list item `prefix[n]`.
    fn list_index(&self, prefix: &[ElementKey]) -> Option<&str> {
        match &self.name {
            EntryName::Written { keys } => match keys.split_last() {
                Some((ElementKey::Index(n), head)) if head == prefix => Some(n),
                _ => None,
            },
            EntryName::Env(words) => match name::env_strip_prefix(words, prefix)? {
                [EnvWord::Index(n)] => Some(n),
                _ => None,
            },
        }
    }
}

/// One file, the environment, or one argument list.
#[derive(Clone, Debug)]
struct Source {
    kind: SourceKind,
    /// In source order; files and arguments hold each property once (the later line wins).
    entries: Vec<Entry>,
    /// The entries by name, built on first use: a module binding ten thousand deployments looks
    /// up tens of thousands of names, and a scan per lookup made start-up quadratic.
    index: OnceLock<NameIndex>,
}

/// Where a source's entries are, by name. Environment variables are matched word by word against
/// a name (they can spell several), so they are kept as a list and scanned. The tables hold
/// positions only: a name is compared with the keys of the entry at a position, never copied.
#[derive(Clone, Debug, Default)]
struct NameIndex {
    /// The position of each written name (the first, as a scan would find it).
    exact: HashTable<usize>,
    /// The positions of `name[i]` items, in source order, by `name` (the first item's name,
    /// without its index, is the table's name).
    items: HashTable<Vec<usize>>,
    /// The positions of written names, sorted by name: the names under a prefix are a run.
    sorted: Vec<usize>,
    /// The positions of environment variables.
    env: Vec<usize>,
}

impl Source {
    fn new(kind: SourceKind, entries: Vec<Entry>) -> Source {
        Source {
            kind,
            entries,
            index: OnceLock::new(),
        }
    }

    fn index(&self) -> &NameIndex {
        self.index.get_or_init(|| {
            let entries = &self.entries;
            let mut index = NameIndex {
                exact: HashTable::with_capacity(entries.len()),
                ..NameIndex::default()
            };
            let list_of = |items: &Vec<usize>| list_name(&entries[items[0]]);
            for (position, entry) in entries.iter().enumerate() {
                let EntryName::Written { keys } = &entry.name else {
                    index.env.push(position);
                    continue;
                };
                index
                    .exact
                    .entry(
                        name_hash(keys),
                        |&at| written_keys(&entries[at]) == keys,
                        |&at| name_hash(written_keys(&entries[at])),
                    )
                    .or_insert(position);
                if let Some(list) = list_name(entry) {
                    index
                        .items
                        .entry(
                            name_hash(list),
                            |items| list_of(items) == Some(list),
                            |items| list_of(items).map_or(0, name_hash),
                        )
                        .or_insert_with(Vec::new)
                        .into_mut()
                        .push(position);
                }
            }
            index.sorted = sorted_by_name(entries, 0..entries.len());
            index
        })
    }

    /// The positions of the entries under `prefix`, in source order: the written ones from their
    /// run in the sorted names, every environment variable that matches.
    fn under(&self, prefix: &[ElementKey]) -> Vec<usize> {
        let index = self.index();
        let mut positions = run_under(&index.sorted, prefix, |i| written_keys(&self.entries[i]));
        positions.extend(
            index
                .env
                .iter()
                .copied()
                .filter(|&i| self.entries[i].is_under(prefix)),
        );
        positions.sort_unstable();
        positions
    }

    /// The first entry named `keys`.
    fn find(&self, keys: &[ElementKey]) -> Option<&Entry> {
        let index = self.index();
        let written = index
            .exact
            .find(name_hash(keys), |&at| {
                written_keys(&self.entries[at]) == keys
            })
            .copied();
        let env = index
            .env
            .iter()
            .copied()
            .find(|&i| self.entries[i].is_named(keys));
        written
            .into_iter()
            .chain(env)
            .min()
            .map(|i| &self.entries[i])
    }

    /// The `keys[i]` items, in source order, with their indices.
    fn list_items(&self, keys: &[ElementKey]) -> Vec<(&str, &Value)> {
        let index = self.index();
        let mut positions: Vec<usize> = index
            .items
            .find(name_hash(keys), |items| {
                list_name(&self.entries[items[0]]) == Some(keys)
            })
            .cloned()
            .unwrap_or_default();
        positions.extend(
            index
                .env
                .iter()
                .copied()
                .filter(|&i| self.entries[i].list_index(keys).is_some()),
        );
        positions.sort_unstable();
        positions
            .into_iter()
            .filter_map(|i| {
                let entry = &self.entries[i];
                Some((entry.list_index(keys)?, &entry.value))
            })
            .collect()
    }
}

/// The layered property sources of one module, later sources win: file, then environment, then
/// arguments.
#[derive(Clone, Debug, Default)]
pub struct PropertySet {
    /// Sources in increasing precedence (sorted by kind, then by the order they were added).
    sources: Vec<Source>,
    /// Non-fatal findings of successful loads, e.g. a key set twice in one file.
    warnings: Vec<Problem>,
    /// The winning entries as (source, entry) indexes, worked out on first use and forgotten
    /// when a source is added. Working them out compares every entry with every entry of the
    /// higher sources; a module with a thousand deployments asks for them a thousand times.
    winners: OnceLock<Vec<(usize, usize)>>,
    /// The winners by name (ranks in the winners' order), for [`PropertySet::entries_under`];
    /// worked out and forgotten with the winners.
    winners_index: OnceLock<NameIndex>,
}

impl PropertySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a `.properties` file (UTF-8; a leading byte-order mark is ignored). `display_path`
    /// is what [`Origin::File`] shows, e.g. `etc/application.properties`. An unreadable file,
    /// invalid UTF-8 and bad escapes come back as problems with file and line (all of them, with
    /// any warnings), and the set is left unchanged.
    pub fn load_file(&mut self, path: &Path, display_path: &Path) -> Result<(), Vec<Problem>> {
        let bytes = std::fs::read(path).map_err(|error| {
            vec![Problem::error(
                codes::FILE_UNREADABLE,
                Some(file_origin(display_path, 0)),
                String::new(),
                format!("cannot read the file: {error}"),
                Some("check that the module home is right and the file is readable".to_owned()),
            )]
        })?;
        match std::str::from_utf8(&bytes) {
            Ok(text) => self.load_str(text, display_path),
            Err(_) => {
                // Still parse the rest, so that one run reports every mistake in the file.
                let lossy = String::from_utf8_lossy(&bytes);
                let mut problems = invalid_utf8_problems(&bytes, display_path);
                problems.extend(parse_file(&lossy, display_path).1);
                sort_by_line(&mut problems);
                Err(problems)
            }
        }
    }

    /// Same as [`PropertySet::load_file`] for text already in memory (tests, fuzzing, `svcid check`).
    pub fn load_str(&mut self, text: &str, display_path: &Path) -> Result<(), Vec<Problem>> {
        let (entries, problems) = parse_file(text, display_path);
        self.accept(SourceKind::File, entries, problems)
    }

    /// Adds environment variables by Spring's rule: name lower-cased, `_` as `.`, a numeric word a
    /// list index (`FOO_ROLES_0_` is `foo.roles[0]`); a dashed segment may be written with or
    /// without `_` (`…_TOKEN_EXPIRATION` or `…_TOKENEXPIRATION`). Takes the pairs so tests need no
    /// real environment. Every variable is kept (as Spring does); lookups only find those that match.
    pub fn add_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) {
        let entries = vars
            .into_iter()
            .map(|(var, raw)| Entry {
                name: EntryName::Env(name::env_words(&var)),
                value: Value {
                    key: var.clone(),
                    raw,
                    origin: Origin::Env { var },
                },
            })
            .collect();
        self.push_source(Source::new(SourceKind::Env, entries));
    }

    /// Adds `--name=value` arguments. Anything else (a positional argument, `--name` without `=`,
    /// an empty name) is an error and leaves the set unchanged; a property given twice is a
    /// warning and the later one wins (Spring would join the two values with a comma).
    pub fn add_args(&mut self, args: &[String]) -> Result<(), Vec<Problem>> {
        let mut problems = Vec::new();
        let mut entries = Vec::new();
        for (index, arg) in args.iter().enumerate() {
            let Some(option) = arg.strip_prefix("--") else {
                // Not echoed: a value pasted without its name may well be a secret.
                problems.push(Problem::error(
                    codes::ARGUMENT_NOT_AN_OPTION,
                    None,
                    format!("argument {}", index + 1),
                    "not a --name=value option; positional arguments are not accepted".to_owned(),
                    Some("write each setting as --property.name=value".to_owned()),
                ));
                continue;
            };
            let Some((key, raw)) = option.split_once('=') else {
                problems.push(Problem::error(
                    codes::ARGUMENT_WITHOUT_VALUE,
                    Some(Origin::Arg {
                        name: option.to_owned(),
                    }),
                    option.to_owned(),
                    "the option has no value".to_owned(),
                    Some(format!("write --{option}=value")),
                ));
                continue;
            };
            let value = Value {
                key: key.to_owned(),
                raw: raw.to_owned(),
                origin: Origin::Arg {
                    name: key.to_owned(),
                },
            };
            match Entry::written(value) {
                Ok(entry) => entries.push(entry),
                Err(_) => problems.push(Problem::error(
                    codes::ARGUMENT_WITHOUT_NAME,
                    None,
                    format!("argument {}", index + 1),
                    "no property name before '='".to_owned(),
                    Some("write each setting as --property.name=value".to_owned()),
                )),
            }
        }
        let (entries, duplicates) = keep_last(entries, |earlier, later| {
            Problem::warning(
                codes::ARGUMENT_DUPLICATE,
                Some(later.origin.clone()),
                later.key.clone(),
                format!(
                    "also given earlier as --{}; the later argument wins",
                    earlier.key
                ),
                Some("give each property once".to_owned()),
            )
        });
        problems.extend(duplicates);
        self.accept(SourceKind::Args, entries, problems)
    }

    /// The winning value of a property, `name` in canonical dashed form (e.g.
    /// `ataccama.authentication.internal.jwt.generator.token-expiration`). Relaxed binding:
    /// segments compare in uniform form, list indices (`roles[0]`) are part of the name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        let keys = name::name_keys(name);
        if keys.is_empty() {
            return None;
        }
        self.sources
            .iter()
            .rev()
            .find_map(|s| s.find(&keys))
            .map(|e| &e.value)
    }

    /// A list property: `name[0]`, `name[1]`, … (in index order, gaps skipped) or one comma list
    /// `name=A,B` (items trimmed, empty items dropped; it wins over indexed items in the same
    /// source, as in Spring). The highest-precedence source that defines the list at all wins as
    /// a whole. `None` when no source defines it; `Some(vec![])` for an explicitly empty list.
    pub fn get_list(&self, name: &str) -> Option<Vec<Value>> {
        let keys = name::name_keys(name);
        if keys.is_empty() {
            return None;
        }
        for source in self.sources.iter().rev() {
            if let Some(entry) = source.find(&keys) {
                let whole = &entry.value;
                let items = whole
                    .raw
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| Value {
                        key: whole.key.clone(),
                        raw: item.to_owned(),
                        origin: whole.origin.clone(),
                    })
                    .collect();
                return Some(items);
            }
            let mut items = source.list_items(&keys);
            if !items.is_empty() {
                // Indices are digit strings without leading zeros: order by length, then text.
                items.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
                items.dedup_by(|(a, _), (b, _)| a == b);
                return Some(items.into_iter().map(|(_, v)| v.clone()).collect());
            }
        }
        None
    }

    /// The distinct map keys directly under `prefix` (relaxed match on the prefix), as written,
    /// in first-seen order (file, then environment, then arguments), e.g.
    /// `map_keys("ataccama.one.platform.deployments")` gives `["dpm-dev", "dpe-dev"]`. Keys whose
    /// uniform forms collide count once, first spelling winning. An environment variable names
    /// the key a file or argument spells if its words can spell it (`…_DPM_DEV_MODULE` is
    /// `dpm-dev` when the file has `dpm-dev`), otherwise its next word (`…_DPMDEV_…` is `dpmdev`).
    pub fn map_keys(&self, prefix: &str) -> Vec<String> {
        let prefix = name::name_keys(prefix);
        let depth = prefix.len();
        // Only the entries under the prefix can give a key; in source order, as written.
        let candidates: Vec<&Entry> = self
            .sources
            .iter()
            .flat_map(|s| s.under(&prefix).into_iter().map(|i| &s.entries[i]))
            .collect();
        // Each written candidate's element at `depth` as written (re-read from its key), which
        // environment variables may spell too.
        let spellings: Vec<Option<Element>> = candidates
            .iter()
            .map(|e| match &e.name {
                EntryName::Written { keys } if keys.starts_with(&prefix) => {
                    name::element_at(&e.value.key, depth)
                }
                _ => None,
            })
            .collect();
        let spelled: Vec<&Element> = spellings.iter().flatten().collect();
        let mut seen: std::collections::HashSet<ElementKey> = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (entry, spelling) in candidates.into_iter().zip(&spellings) {
            let found = match &entry.name {
                EntryName::Written { .. } => spelling
                    .as_ref()
                    .map(|e| (e.written.clone(), e.key.clone())),
                EntryName::Env(words) => name::env_strip_prefix(words, &prefix).and_then(|rest| {
                    let known = spelled.iter().find(|e| {
                        name::env_strip_prefix(rest, std::slice::from_ref(&e.key)).is_some()
                    });
                    match known {
                        Some(e) => Some((e.written.clone(), e.key.clone())),
                        None => rest.first().map(|w| (w.written(), w.key())),
                    }
                }),
            };
            if let Some((written, key)) = found
                && seen.insert(key)
            {
                out.push(written);
            }
        }
        out
    }

    /// Every winning property whose name starts with `prefix` (relaxed), in [`PropertySet::iter`]
    /// order; for unknown-property checks and maps.
    pub fn entries_under(&self, prefix: &str) -> Vec<&Value> {
        let prefix = name::name_keys(prefix);
        let positions = self.winner_positions();
        let winner = |rank: usize| self.entry_at(positions[rank]);
        let index = self.winners_index();
        let mut ranks = run_under(&index.sorted, &prefix, |rank| written_keys(winner(rank)));
        ranks.extend(
            index
                .env
                .iter()
                .copied()
                .filter(|&rank| winner(rank).is_under(&prefix)),
        );
        ranks.sort_unstable();
        ranks.into_iter().map(|rank| &winner(rank).value).collect()
    }

    /// All winning entries: file entries in file order, then environment variables (all of them,
    /// matching or not), then arguments. A property overridden by a later source is left out.
    pub fn iter(&self) -> impl Iterator<Item = &Value> {
        self.winners().into_iter().map(|e| &e.value)
    }

    /// Non-fatal findings of the sources loaded so far, e.g. a key set twice in one file (the
    /// later line wins, as in Java), naming both lines.
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// Entries no higher-precedence source overrides, in source order.
    fn winners(&self) -> Vec<&Entry> {
        self.winner_positions()
            .iter()
            .map(|&position| self.entry_at(position))
            .collect()
    }

    /// The entry at a (source, entry) position.
    fn entry_at(&self, (source, entry): (usize, usize)) -> &Entry {
        &self.sources[source].entries[entry]
    }

    /// The winning entries as (source, entry) positions, in source order.
    fn winner_positions(&self) -> &[(usize, usize)] {
        self.winners.get_or_init(|| {
            let mut out = Vec::new();
            for (index, source) in self.sources.iter().enumerate() {
                let higher = self.sources.get(index + 1..).unwrap_or_default();
                for (at, entry) in source.entries.iter().enumerate() {
                    if !higher
                        .iter()
                        .flat_map(|s| &s.entries)
                        .any(|h| h.same_property(entry))
                    {
                        out.push((index, at));
                    }
                }
            }
            out
        })
    }

    /// The winners' written names sorted (as ranks in [`PropertySet::winners`]' order), and the
    /// ranks of the environment variables among them.
    fn winners_index(&self) -> &NameIndex {
        self.winners_index.get_or_init(|| {
            let winners = self.winners();
            let written = |source: &&Source| {
                (source.entries.iter()).any(|e| matches!(e.name, EntryName::Written { .. }))
            };
            let mut holders = self.sources.iter().enumerate().filter(|(_, s)| written(s));
            let sorted = match (holders.next(), holders.next()) {
                // One source holds every written name (the file; the environment's names are not
                // written ones): its index has them sorted already, so they only need their ranks.
                (Some((only, source)), None) => {
                    let mut rank_of = vec![None; source.entries.len()];
                    for (rank, &(from, at)) in self.winner_positions().iter().enumerate() {
                        if from == only {
                            rank_of[at] = Some(rank);
                        }
                    }
                    (source.index().sorted.iter())
                        .filter_map(|&at| rank_of[at])
                        .collect()
                }
                _ => sorted_by_name(&winners, 0..winners.len()),
            };
            let mut index = NameIndex {
                sorted,
                ..NameIndex::default()
            };
            index.env = (0..winners.len())
                .filter(|&rank| matches!(winners[rank].name, EntryName::Env(_)))
                .collect();
            index
        })
    }

    /// Adds a source if `problems` holds no error; otherwise returns all of them, set unchanged.
    fn accept(
        &mut self,
        kind: SourceKind,
        entries: Vec<Entry>,
        mut problems: Vec<Problem>,
    ) -> Result<(), Vec<Problem>> {
        sort_by_line(&mut problems);
        if problems.iter().any(Problem::is_error) {
            return Err(problems);
        }
        self.warnings.extend(problems);
        self.push_source(Source::new(kind, entries));
        Ok(())
    }

    fn push_source(&mut self, source: Source) {
        self.winners = OnceLock::new();
        self.winners_index = OnceLock::new();
        let at = self
            .sources
            .iter()
            .position(|s| s.kind > source.kind)
            .unwrap_or(self.sources.len());
        self.sources.insert(at, source);
    }
}

/// The positions among `entries` of those with a written name, sorted by that name.
fn sorted_by_name<E: std::borrow::Borrow<Entry>>(
    entries: &[E],
    positions: std::ops::Range<usize>,
) -> Vec<usize> {
    let mut sorted: Vec<usize> = positions
        .filter(|&i| matches!(entries[i].borrow().name, EntryName::Written { .. }))
        .collect();
    // Stable: a file's lines are mostly in order already, and the stable sort finds the runs.
    sorted
        .sort_by(|&a, &b| written_keys(entries[a].borrow()).cmp(written_keys(entries[b].borrow())));
    sorted
}

/// The hash of a name's keys with [`NameHasher`].
fn name_hash(keys: &[ElementKey]) -> u64 {
    let mut hasher = NameHasher::default();
    keys.hash(&mut hasher);
    hasher.finish()
}

/// The name of the list an entry is an item of (`name` for `name[i]`), `None` if it is none.
fn list_name(entry: &Entry) -> Option<&[ElementKey]> {
    match written_keys(entry).split_last() {
        Some((ElementKey::Index(_), head)) => Some(head),
        _ => None,
    }
}

/// FxHash (the multiply-and-rotate hash rustc uses for its own tables) over a name's keys. The
/// names hashed are the module's own properties, from its files, environment and arguments, not
/// anything a peer sends, so SipHash's keyed defence against chosen collisions buys nothing
/// here; and a module binding 10,000 deployments looks names up some 100,000 times per load,
/// where SipHash was 8.7 % of a reload's CPU (BENCHMARKS.md, "With deployments").
#[derive(Clone, Copy, Debug, Default)]
struct NameHasher(u64);

impl NameHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for chunk in &mut words {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let mut last = [0; 8];
        let rest = words.remainder();
        last[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(last));
    }

    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The written name's keys of an entry (empty for an environment variable).
fn written_keys(entry: &Entry) -> &[ElementKey] {
    match &entry.name {
        EntryName::Written { keys } => keys,
        EntryName::Env(_) => &[],
    }
}

/// The positions in `sorted` (sorted by written name) whose name starts with `prefix`: one run,
/// found by binary search.
fn run_under<'e>(
    sorted: &[usize],
    prefix: &[ElementKey],
    keys_of: impl Fn(usize) -> &'e [ElementKey],
) -> Vec<usize> {
    let start = sorted.partition_point(|&i| keys_of(i) < prefix);
    sorted[start..]
        .iter()
        .copied()
        .take_while(|&i| keys_of(i).starts_with(prefix))
        .collect()
}

/// Reads the text of one properties file into entries (each property once, the later line
/// winning) and the problems found: syntax errors, nameless lines, repeated keys.
fn parse_file(text: &str, display_path: &Path) -> (Vec<Entry>, Vec<Problem>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let parsed = syntax::parse(text);
    let mut problems: Vec<Problem> = parsed
        .errors
        .iter()
        .map(|e| syntax_problem(e, display_path))
        .collect();
    let mut entries = Vec::with_capacity(parsed.pairs.len());
    for pair in parsed.pairs {
        let value = Value {
            key: pair.key,
            raw: pair.value,
            origin: file_origin(display_path, pair.line),
        };
        match Entry::written(value) {
            Ok(entry) => entries.push(entry),
            Err(nameless) => problems.push(Problem::warning(
                codes::NO_NAME,
                Some(nameless.origin),
                nameless.key,
                "the line has no property name, so it is ignored".to_owned(),
                Some("write it as name=value, or comment it out with #".to_owned()),
            )),
        }
    }
    let (entries, duplicates) = keep_last(entries, |earlier, later| {
        let line = match earlier.origin {
            Origin::File { line, .. } => line,
            _ => 0,
        };
        let spelled = if earlier.key == later.key {
            String::new()
        } else {
            format!(" as {}", earlier.key)
        };
        Problem::warning(
            codes::DUPLICATE,
            Some(later.origin.clone()),
            later.key.clone(),
            format!("also set on line {line}{spelled}; this later line wins"),
            Some("remove one of the two lines".to_owned()),
        )
    });
    problems.extend(duplicates);
    (entries, problems)
}

fn file_origin(display_path: &Path, line: u32) -> Origin {
    Origin::File {
        path: display_path.to_path_buf(),
        line,
    }
}

/// Orders problems by file line (stable, so problems without a line keep their order).
fn sort_by_line(problems: &mut [Problem]) {
    problems.sort_by_key(|p| match &p.origin {
        Some(Origin::File { line, .. }) => *line,
        _ => 0,
    });
}

/// Keeps the last entry of each property (Java semantics for a key repeated in one file), in the
/// position of that last entry, and describes each overridden one with `warn(earlier, later)`.
fn keep_last(
    entries: Vec<Entry>,
    warn: impl Fn(&Value, &Value) -> Problem,
) -> (Vec<Entry>, Vec<Problem>) {
    let mut slots: Vec<Option<Entry>> = Vec::with_capacity(entries.len());
    // The slot holding each name's latest entry; a name is compared with that entry's keys.
    let mut by_name: HashTable<usize> = HashTable::with_capacity(entries.len());
    let mut problems = Vec::new();
    for entry in entries {
        let EntryName::Written { keys } = &entry.name else {
            slots.push(Some(entry));
            continue;
        };
        let keys_in = |slot: &usize| slots[*slot].as_ref().map_or(&[][..], written_keys);
        let hash = name_hash(keys);
        let slot = slots.len();
        match by_name.find_mut(hash, |at| keys_in(at) == keys) {
            Some(latest) => {
                let earlier = std::mem::replace(latest, slot);
                if let Some(earlier) = slots.get_mut(earlier).and_then(Option::take) {
                    problems.push(warn(&earlier.value, &entry.value));
                }
            }
            None => {
                by_name.insert_unique(hash, slot, |at| name_hash(keys_in(at)));
            }
        }
        slots.push(Some(entry));
    }
    (slots.into_iter().flatten().collect(), problems)
}

fn syntax_problem(error: &SyntaxError, display_path: &Path) -> Problem {
    let column = error.column;
    let (code, message, fix) = match error.kind {
        SyntaxErrorKind::MalformedUnicodeEscape => (
            codes::MALFORMED_UNICODE_ESCAPE,
            format!(
                "malformed \\u escape at column {column}: \\u must be followed by four hexadecimal digits"
            ),
            "write the character itself (the file is UTF-8) or as \\uXXXX; write \\\\ for a literal backslash",
        ),
        SyntaxErrorKind::UnpairedSurrogate => (
            codes::UNPAIRED_SURROGATE,
            format!("unpaired UTF-16 surrogate escape at column {column}"),
            "write the character itself (the file is UTF-8) or both halves of its surrogate pair",
        ),
    };
    Problem::error(
        code,
        Some(file_origin(display_path, error.line)),
        error.key.clone(),
        message,
        Some(fix.to_owned()),
    )
}

/// One problem per line holding bytes that are not UTF-8, naming the first bad byte.
fn invalid_utf8_problems(bytes: &[u8], display_path: &Path) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut line: u32 = 1;
    let mut last_reported = 0;
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        let Some(&bad) = chunk.invalid().first() else {
            continue;
        };
        // Line terminators are ASCII, so `\r\n` never straddles a chunk boundary.
        let breaks = valid.matches(['\r', '\n']).count() - valid.matches("\r\n").count();
        line = line.saturating_add(u32::try_from(breaks).unwrap_or(u32::MAX));
        if line == last_reported {
            continue;
        }
        last_reported = line;
        let line_start = valid.rfind(['\r', '\n']).map_or(0, |i| i + 1);
        let column = valid[line_start..].chars().count() + 1;
        problems.push(Problem::error(
            codes::NOT_UTF8,
            Some(file_origin(display_path, line)),
            String::new(),
            format!("the file is not valid UTF-8 (byte 0x{bad:02X} at column {column})"),
            Some("save the file as UTF-8 (it looks like ISO-8859-1 or Windows-1252), or write the character as \\uXXXX".to_owned()),
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Severity;

    const FILE: &str = "etc/application.properties";

    fn loaded(text: &str) -> PropertySet {
        let mut set = PropertySet::new();
        if let Err(problems) = set.load_str(text, Path::new(FILE)) {
            panic!("unexpected problems: {problems:#?}");
        }
        set
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|&a| a.to_owned()).collect()
    }

    fn line(value: &Value) -> u32 {
        match value.origin {
            Origin::File { line, .. } => line,
            ref other => panic!("not from a file: {other:?}"),
        }
    }

    fn raw<'a>(set: &'a PropertySet, name: &str) -> Option<&'a str> {
        set.get(name).map(|v| v.raw.as_str())
    }

    fn raws(values: &[Value]) -> Vec<&str> {
        values.iter().map(|v| v.raw.as_str()).collect()
    }

    #[test]
    fn file_values_remember_their_line_and_key_as_written() {
        let set = loaded(
            "# comment\n! other comment\nataccama.server.grpc.port = 8531\n\nataccama.server.grpc.host:0.0.0.0\nlogging.level.root INFO\n",
        );
        let port = set.get("ataccama.server.grpc.port").expect("port");
        assert_eq!(port.raw, "8531");
        assert_eq!(port.key, "ataccama.server.grpc.port");
        assert_eq!(port.origin.to_string(), "etc/application.properties:3");
        assert_eq!(raw(&set, "ataccama.server.grpc.host"), Some("0.0.0.0"));
        assert_eq!(raw(&set, "logging.level.root"), Some("INFO"));
        assert_eq!(set.get("ataccama.server"), None);
        assert_eq!(set.get(""), None);
        assert!(set.warnings().is_empty());
    }

    #[test]
    fn continuation_values_keep_the_first_line() {
        let set = loaded(
            "a=1\nataccama.authentication.internal.jwt.generator.key=ZXlK\\\n    aGVs\\\n    bG8=\nb=2\n",
        );
        let key = set
            .get("ataccama.authentication.internal.jwt.generator.key")
            .expect("key");
        assert_eq!(key.raw, "ZXlKaGVsbG8=");
        assert_eq!(line(key), 2);
        assert_eq!(line(set.get("b").expect("b")), 5);
    }

    #[test]
    fn escapes_and_utf8_values() {
        let set = loaded("greeting=caf\\u00e9 cr\u{e8}me\n");
        assert_eq!(raw(&set, "greeting"), Some("café crème"));
    }

    #[test]
    fn relaxed_binding_matches_every_spelling() {
        for spelling in ["is-revoked", "isRevoked", "is_revoked", "ISREVOKED"] {
            let set = loaded(&format!("a.security.jwt-keys.key1.{spelling}=true\n"));
            let value = set
                .get("a.security.jwt-keys.key1.is-revoked")
                .expect(spelling);
            assert_eq!(value.key, format!("a.security.jwt-keys.key1.{spelling}"));
        }
        let set = loaded("Ataccama.Logging.plainTextConsoleAppender=false\n");
        assert_eq!(
            raw(&set, "ataccama.logging.plain-text-console-appender"),
            Some("false")
        );
        assert_eq!(
            raw(&set, "ataccama.logging.plainTextConsoleAppender"),
            Some("false")
        );
    }

    #[test]
    fn duplicate_keys_later_line_wins_with_a_warning() {
        let set = loaded("a.is-revoked=false\nother=1\na.isRevoked=true\nx=1\nx=2\n");
        let value = set.get("a.is-revoked").expect("value");
        assert_eq!((value.raw.as_str(), line(value)), ("true", 3));
        assert_eq!(raw(&set, "x"), Some("2"));
        let shown: Vec<String> = set.warnings().iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "etc/application.properties:3: warning: a.isRevoked: also set on line 1 as a.is-revoked; this later line wins; fix: remove one of the two lines",
                "etc/application.properties:5: warning: x: also set on line 4; this later line wins; fix: remove one of the two lines",
            ]
        );
        // Only the winning line remains, in its own position.
        let keys: Vec<&str> = set.iter().map(|v| v.key.as_str()).collect();
        assert_eq!(keys, vec!["other", "a.isRevoked", "x"]);
    }

    #[test]
    fn nameless_lines_are_warned_about_and_ignored() {
        let set = loaded("=value\n : other\nok=1\n");
        assert_eq!(set.iter().count(), 1);
        assert_eq!(set.warnings().len(), 2);
        assert!(
            set.warnings()
                .iter()
                .all(|w| w.severity == Severity::Warning)
        );
    }

    #[test]
    fn syntax_errors_are_problems_with_file_and_line_and_change_nothing() {
        let mut set = loaded("kept=1\n");
        let problems = set
            .load_str(
                "good=1\nbad=\\u12G4\nagain=1\nagain=2\nworse=\\uD800\n",
                Path::new(FILE),
            )
            .expect_err("bad escapes");
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "etc/application.properties:2: error: bad: malformed \\u escape at column 5: \\u must be followed by four hexadecimal digits; fix: write the character itself (the file is UTF-8) or as \\uXXXX; write \\\\ for a literal backslash",
                "etc/application.properties:4: warning: again: also set on line 3; this later line wins; fix: remove one of the two lines",
                "etc/application.properties:5: error: worse: unpaired UTF-16 surrogate escape at column 7; fix: write the character itself (the file is UTF-8) or both halves of its surrogate pair",
            ]
        );
        assert_eq!(set.get("good"), None, "a failed load adds nothing");
        assert_eq!(raw(&set, "kept"), Some("1"));
        assert!(
            set.warnings().is_empty(),
            "warnings of a failed load are returned, not kept"
        );
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        let set = loaded("\u{feff}first=1\n");
        assert_eq!(raw(&set, "first"), Some("1"));
    }

    #[test]
    fn lists_indexed_or_comma_separated() {
        let set =
            loaded("a.roles[0]=IMPERSONATION\na.roles[1]= ADMIN \nb.roles=A, B ,,C ,\nc.roles=\n");
        assert_eq!(
            raws(&set.get_list("a.roles").expect("a")),
            vec!["IMPERSONATION", "ADMIN "],
            "Java drops leading blanks, keeps trailing ones"
        );
        assert_eq!(
            raws(&set.get_list("b.roles").expect("b")),
            vec!["A", "B", "C"]
        );
        assert_eq!(
            set.get_list("c.roles").map(|l| l.len()),
            Some(0),
            "an explicitly empty list"
        );
        assert_eq!(set.get_list("d.roles").map(|l| l.len()), None);
        let items = set.get_list("a.roles").expect("a");
        assert_eq!(items[1].key, "a.roles[1]");
        assert_eq!(line(&items[1]), 2);
        let split = set.get_list("b.roles").expect("b");
        assert!(split.iter().all(|v| v.key == "b.roles" && line(v) == 3));
    }

    #[test]
    fn list_indices_sort_numerically_and_comma_list_wins_in_its_source() {
        let set = loaded("r[10]=ten\nr[2]=two\nr[0]=zero\nboth=A,B\nboth[0]=X\n");
        assert_eq!(
            raws(&set.get_list("r").expect("r")),
            vec!["zero", "two", "ten"]
        );
        assert_eq!(raws(&set.get_list("both").expect("both")), vec!["A", "B"]);
    }

    #[test]
    fn highest_source_defining_a_list_wins_as_a_whole() {
        let mut set = loaded("a.roles[0]=A\na.roles[1]=B\na.roles[2]=C\n");
        set.add_env(env(&[("A_ROLES_0_", "X")]));
        assert_eq!(
            raws(&set.get_list("a.roles").expect("env")),
            vec!["X"],
            "no C left over from the file"
        );
        set.add_args(&args(&["--a.roles=Y,Z"])).expect("args");
        let items = set.get_list("a.roles").expect("args");
        assert_eq!(raws(&items), vec!["Y", "Z"]);
        assert_eq!(
            items[0].origin.to_string(),
            "command-line argument --a.roles"
        );
    }

    #[test]
    fn env_lists_use_numeric_words() {
        let mut set = PropertySet::new();
        set.add_env(env(&[
            (
                "ATACCAMA_ONE_PLATFORM_DEPLOYMENTS_DPMDEV_SECURITY_ROLES_1_",
                "ADMIN",
            ),
            (
                "ATACCAMA_ONE_PLATFORM_DEPLOYMENTS_DPMDEV_SECURITY_ROLES_0_",
                "IMPERSONATION",
            ),
        ]));
        let roles = set
            .get_list("ataccama.one.platform.deployments.dpm-dev.security.roles")
            .expect("roles");
        assert_eq!(raws(&roles), vec!["IMPERSONATION", "ADMIN"]);
        assert_eq!(
            roles[0].origin.to_string(),
            "environment variable ATACCAMA_ONE_PLATFORM_DEPLOYMENTS_DPMDEV_SECURITY_ROLES_0_"
        );
        let first = set
            .get("ataccama.one.platform.deployments.dpm-dev.security.roles[0]")
            .expect("[0]");
        assert_eq!(first.raw, "IMPERSONATION");
    }

    #[test]
    fn env_overrides_file_and_args_override_env() {
        let mut set = loaded("ataccama.server.grpc.port=8531\nataccama.server.grpc.host=0.0.0.0\n");
        set.add_env(env(&[
            ("ATACCAMA_SERVER_GRPC_PORT", "9000"),
            ("PATH", "/usr/bin"),
            ("HOME", "/root"),
        ]));
        let port = set.get("ataccama.server.grpc.port").expect("port");
        assert_eq!(port.raw, "9000");
        assert_eq!(
            port.origin.to_string(),
            "environment variable ATACCAMA_SERVER_GRPC_PORT"
        );
        assert_eq!(port.key, "ATACCAMA_SERVER_GRPC_PORT");
        set.add_args(&args(&["--ataccama.server.grpc.port=9100"]))
            .expect("args");
        let port = set.get("ataccama.server.grpc.port").expect("port");
        assert_eq!(port.raw, "9100");
        assert_eq!(
            port.origin,
            Origin::Arg {
                name: "ataccama.server.grpc.port".into()
            }
        );
        assert_eq!(raw(&set, "ataccama.server.grpc.host"), Some("0.0.0.0"));
    }

    #[test]
    fn precedence_does_not_depend_on_the_order_sources_are_added() {
        let mut set = PropertySet::new();
        set.add_args(&args(&["--x.y=arg"])).expect("args");
        set.add_env(env(&[("X_Y", "env")]));
        set.load_str("x.y=file\n", Path::new(FILE)).expect("file");
        assert_eq!(raw(&set, "x.y"), Some("arg"));
        // Two files: the later one wins.
        set.load_str("z=first\n", Path::new("a.properties"))
            .expect("a");
        set.load_str("z=second\n", Path::new("b.properties"))
            .expect("b");
        assert_eq!(raw(&set, "z"), Some("second"));
    }

    #[test]
    fn env_dashed_segments_match_with_or_without_underscores() {
        let name = "ataccama.authentication.internal.jwt.generator.token-expiration";
        for var in [
            "ATACCAMA_AUTHENTICATION_INTERNAL_JWT_GENERATOR_TOKENEXPIRATION",
            "ATACCAMA_AUTHENTICATION_INTERNAL_JWT_GENERATOR_TOKEN_EXPIRATION",
        ] {
            let mut set = loaded(&format!("{name}=15s\n"));
            set.add_env(env(&[(var, "30s")]));
            assert_eq!(raw(&set, name), Some("30s"), "{var}");
        }
    }

    #[test]
    fn iter_lists_winners_in_source_order() {
        let mut set = loaded("a=1\nb=2\nc=3\n");
        set.add_env(env(&[("B", "env"), ("UNRELATED", "u")]));
        set.add_args(&args(&["--c=arg", "--d=arg"])).expect("args");
        let shown: Vec<(&str, &str)> = set
            .iter()
            .map(|v| (v.key.as_str(), v.raw.as_str()))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("a", "1"),
                ("B", "env"),
                ("UNRELATED", "u"),
                ("c", "arg"),
                ("d", "arg")
            ]
        );
    }

    #[test]
    fn lookups_by_name_keep_source_order_across_many_deployments() {
        // Written out of name order, with relaxed spellings and an overriding argument: the
        // indexes must answer exactly as a scan in source order would.
        let mut text = String::new();
        for i in (0..2_000).rev() {
            text.push_str(&format!(
                "ataccama.one.platform.deployments.d{i}.module=dpe\n\
                 ataccama.one.platform.deployments.d{i}.security.roles[1]=B{i}\n\
                 ataccama.one.platform.deployments.d{i}.security.roles[0]=A{i}\n\
                 ataccama.one.platform.deployments.d{i}.security.jwtKeys.k{i}.is-revoked=false\n"
            ));
        }
        let mut set = loaded(&text);
        set.add_args(&["--ataccama.one.platform.deployments.d7.module=dpm".to_owned()])
            .expect("a valid argument");
        let keys = set.map_keys("ataccama.one.platform.deployments");
        assert_eq!(keys.len(), 2_000);
        assert_eq!((keys[0].as_str(), keys[1_999].as_str()), ("d1999", "d0"));
        assert_eq!(
            set.map_keys("ataccama.one.platform.deployments.d7.security.jwt-keys"),
            ["k7"]
        );
        let roles: Vec<String> = set
            .get_list("ataccama.one.platform.deployments.d42.security.roles")
            .expect("d42's roles")
            .into_iter()
            .map(|v| v.raw)
            .collect();
        assert_eq!(roles, ["A42", "B42"]);
        assert_eq!(
            set.get("ataccama.one.platform.deployments.d7.module")
                .expect("d7's module")
                .raw,
            "dpm"
        );
        let under: Vec<&str> = set
            .entries_under("ataccama.one.platform.deployments.d7")
            .into_iter()
            .map(|v| v.raw.as_str())
            .collect();
        assert_eq!(under, ["B7", "A7", "false", "dpm"]);
    }

    #[test]
    fn entries_under_a_prefix_are_the_winners_there() {
        let mut set = loaded(
            "ataccama.one.platform.deployments.dpm-dev.module=dpm\n\
             ataccama.one.platform.deployments.dpm-dev.security.jwt-keys.key.isRevokd=false\n\
             ataccama.one.platformx.other=1\n\
             ataccama.server.grpc.port=1\n",
        );
        set.add_env(env(&[(
            "ATACCAMA_ONE_PLATFORM_DEPLOYMENTS_DPMDEV_MODULE",
            "dpe",
        )]));
        let under: Vec<(&str, &str)> = set
            .entries_under("ataccama.one.platform.deployments.dpm-dev")
            .into_iter()
            .map(|v| (v.key.as_str(), v.raw.as_str()))
            .collect();
        assert_eq!(
            under,
            vec![
                (
                    "ataccama.one.platform.deployments.dpm-dev.security.jwt-keys.key.isRevokd",
                    "false"
                ),
                ("ATACCAMA_ONE_PLATFORM_DEPLOYMENTS_DPMDEV_MODULE", "dpe"),
            ]
        );
        assert_eq!(
            set.entries_under("ataccama.one.platform").len(),
            2,
            "platformx is not under platform"
        );
    }

    #[test]
    fn the_winners_names_sort_alike_from_the_files_index_or_afresh() {
        let mut set = loaded("b.x=1\na.y=2\nc[k].z=3\na.a=4\nb.x=5\nroles[1]=r\nroles[0]=q\n");
        set.add_env(env(&[("B_X", "9"), ("PATH", "/bin"), ("A_A", "7")]));
        let sorted_afresh = |set: &PropertySet| {
            let winners = set.winners();
            sorted_by_name(&winners, 0..winners.len())
        };
        assert_eq!(set.winners_index().sorted, sorted_afresh(&set));
        assert_eq!(
            set.winners_index().sorted.len(),
            4,
            "the file's winners only"
        );
        set.add_args(&["--a.b=1".to_owned(), "--a.y=3".to_owned()])
            .expect("two well-formed arguments");
        assert_eq!(set.winners_index().sorted, sorted_afresh(&set));
    }

    #[test]
    fn map_keys_lists_deployments_once_each() {
        let mut set = loaded(
            "ataccama.one.platform.deployments.dpm-dev.module=dpm\n\
             ataccama.one.platform.deployments.dpm-dev.environment=dev\n\
             ataccama.one.platform.deployments.dpe-dev.module=dpe\n\
             ataccama.one.platform.deployments.dpeDev.uri=http://x\n\
             ataccama.one.platform.deployments[dpe-prod].module=dpe\n\
             ataccama.one.platform.other=1\n",
        );
        set.add_env(env(&[
            (
                "ATACCAMA_ONE_PLATFORM_DEPLOYMENTS_DPM_DEV_ENVIRONMENT",
                "test",
            ),
            ("ATACCAMA_ONE_PLATFORM_DEPLOYMENTS_DPMPROD_MODULE", "dpm"),
        ]));
        set.add_args(&args(&[
            "--ataccama.one.platform.deployments.dpm-test.module=dpm",
        ]))
        .expect("args");
        assert_eq!(
            set.map_keys("ataccama.one.platform.deployments"),
            vec!["dpm-dev", "dpe-dev", "dpe-prod", "dpmprod", "dpm-test"]
        );
        assert_eq!(
            set.map_keys("ataccama.one.platform.deployments.dpm-dev"),
            vec!["module", "environment"]
        );
        assert!(set.map_keys("nothing.here").is_empty());
        // The env variable with `_` inside the deployment name still overrides the file.
        assert_eq!(
            raw(
                &set,
                "ataccama.one.platform.deployments.dpm-dev.environment"
            ),
            Some("test")
        );
    }

    /// The dpe-dev block of `seeds/ataccama-generate-jwt-keys.txt`, copied with its indentation.
    const MANUAL_DPE_DEV: &str = "    dpm/etc/application.properties
    ataccama.one.platform.deployments.dpe-dev.module=dpe
    ataccama.one.platform.deployments.dpe-dev.environment=dev
    ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key1.fingerprint=kHSzWkPiZKfSKAgdIkCdXfAAKs7x23jszQLkTOzQTEM
    ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key1.content={\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"KBv0lrEO88ISAnmwXn6Y5jYjG9TvemuZA0yQlq7QpG0\",\"x\":\"KsJKpmDA03Js3o8JWWiH5tyUfv80kaJy60_7BOrwmKo\",\"y\":\"7kfcrUzl95MQEZnCjhWA0dIIhzK-jvdaAtGRAuBzZbk\",\"alg\":\"ES256\"}
    ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key1.is-revoked=false
    ataccama.one.platform.deployments.dpe-dev.security.roles[0]=IMPERSONATION
";

    #[test]
    fn the_manuals_dpe_dev_block_parses_with_lines() {
        let set = loaded(MANUAL_DPE_DEV);
        let prefix = "ataccama.one.platform.deployments.dpe-dev";
        let expect = |name: &str, value: &str, at: u32| {
            let found = set
                .get(&format!("{prefix}.{name}"))
                .unwrap_or_else(|| panic!("{name}"));
            assert_eq!((found.raw.as_str(), line(found)), (value, at), "{name}");
        };
        expect("module", "dpe", 2);
        expect("environment", "dev", 3);
        expect(
            "security.jwt-keys.key1.fingerprint",
            "kHSzWkPiZKfSKAgdIkCdXfAAKs7x23jszQLkTOzQTEM",
            4,
        );
        expect(
            "security.jwt-keys.key1.content",
            r#"{"kty":"EC","crv":"P-256","kid":"KBv0lrEO88ISAnmwXn6Y5jYjG9TvemuZA0yQlq7QpG0","x":"KsJKpmDA03Js3o8JWWiH5tyUfv80kaJy60_7BOrwmKo","y":"7kfcrUzl95MQEZnCjhWA0dIIhzK-jvdaAtGRAuBzZbk","alg":"ES256"}"#,
            5,
        );
        expect("security.jwt-keys.key1.is-revoked", "false", 6);
        expect("security.roles[0]", "IMPERSONATION", 7);
        assert_eq!(
            raws(
                &set.get_list(&format!("{prefix}.security.roles"))
                    .expect("roles")
            ),
            vec!["IMPERSONATION"]
        );
        assert_eq!(
            set.map_keys("ataccama.one.platform.deployments"),
            vec!["dpe-dev"]
        );
        assert_eq!(
            set.map_keys(&format!("{prefix}.security.jwt-keys")),
            vec!["key1"]
        );
        // The caption line the manual prints above the block is a (harmless) property of its own:
        // "dpm/etc/application.properties" with an empty value. `config` reports it as unknown.
        assert_eq!(raw(&set, "dpm/etc/application.properties"), Some(""));
    }

    #[test]
    fn the_manuals_broken_first_example_still_loads_as_text() {
        // Quotes missing before kty and crv: not JSON, but a valid property. Judging the JSON is
        // the identity crate's job; here it must arrive verbatim with its line.
        let text = "ataccama.one.platform.deployments.dpm-dev.security.jwt-keys.key.content={kty\":\"EC\",crv\":\"P-256\",\"kid\":\"vcjAli5Xm_pvtE8ItBkd3aT_FWi_23WieMf5f-lppBI\",\"x\":\"Hbs53V5zC-1DjNf5RtJ1bNHlxvzM5jST7J1ADVePV9g\",\"y\":\"4pVfzrF7FMHt_Xx2FgLauvLZuJqbpL9crdOxvTXWb64\",\"alg\":\"ES256\"}\n";
        let set = loaded(text);
        let content = set
            .get("ataccama.one.platform.deployments.dpm-dev.security.jwt-keys.key.content")
            .expect("content");
        assert!(content.raw.starts_with("{kty\":\"EC\",crv\""));
        assert_eq!(line(content), 1);
    }

    /// A unique scratch path under the system temp dir (no extra crate for temp files).
    fn scratch(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("svcid-properties-{}-{name}", std::process::id()))
    }

    #[test]
    fn load_file_reads_utf8_from_disk() {
        let path = scratch("ok.properties");
        std::fs::write(&path, "a=é\r\nb=2\r\n").expect("write");
        let mut set = PropertySet::new();
        set.load_file(&path, Path::new(FILE)).expect("load");
        std::fs::remove_file(&path).ok();
        assert_eq!(raw(&set, "a"), Some("é"));
        assert_eq!(
            set.get("b").expect("b").origin.to_string(),
            "etc/application.properties:2"
        );
    }

    #[test]
    fn load_file_reports_invalid_utf8_by_line_along_with_other_errors() {
        let path = scratch("latin1.properties");
        // Line 2 and line 4 hold ISO-8859-1 bytes; line 3 has a bad escape.
        std::fs::write(&path, b"ok=1\r\nname=caf\xe9 cr\xe8me\nbad=\\u00\n\xff=x\n")
            .expect("write");
        let mut set = PropertySet::new();
        let problems = set
            .load_file(&path, Path::new(FILE))
            .expect_err("invalid utf-8");
        std::fs::remove_file(&path).ok();
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 3, "{shown:#?}");
        assert!(shown[0].starts_with("etc/application.properties:2: error: the file is not valid UTF-8 (byte 0xE9 at column 9)"), "{}", shown[0]);
        assert!(
            shown[1].starts_with("etc/application.properties:3: error: bad: malformed \\u escape"),
            "{}",
            shown[1]
        );
        assert!(shown[2].starts_with("etc/application.properties:4: error: the file is not valid UTF-8 (byte 0xFF at column 1)"), "{}", shown[2]);
        let named: Vec<_> = problems.iter().map(|p| p.code).collect();
        assert_eq!(
            named,
            [
                codes::NOT_UTF8,
                codes::MALFORMED_UNICODE_ESCAPE,
                codes::NOT_UTF8
            ]
        );
        assert!(set.iter().next().is_none());
    }

    #[test]
    fn every_problem_of_this_crate_names_its_code() {
        let code_of = |text: &str| {
            let mut set = PropertySet::new();
            match set.load_str(text, Path::new(FILE)) {
                Ok(()) => set.warnings().iter().map(|p| p.code).collect::<Vec<_>>(),
                Err(problems) => problems.iter().map(|p| p.code).collect(),
            }
        };
        assert_eq!(code_of("a=1\na=2\n"), [codes::DUPLICATE]);
        assert_eq!(code_of("=x\n"), [codes::NO_NAME]);
        assert_eq!(code_of("a=\\u12\n"), [codes::MALFORMED_UNICODE_ESCAPE]);
        assert_eq!(code_of("a=\\ud800\n"), [codes::UNPAIRED_SURROGATE]);
        let problems = PropertySet::new()
            .load_file(&scratch("absent.properties"), Path::new(FILE))
            .expect_err("missing");
        assert_eq!(problems[0].code, codes::FILE_UNREADABLE);

        let args_codes = |list: &[&str]| {
            let mut set = PropertySet::new();
            match set.add_args(&args(list)) {
                Ok(()) => set.warnings().iter().map(|p| p.code).collect::<Vec<_>>(),
                Err(problems) => problems.iter().map(|p| p.code).collect(),
            }
        };
        assert_eq!(
            args_codes(&["plain", "--name", "--=x"]),
            [
                codes::ARGUMENT_NOT_AN_OPTION,
                codes::ARGUMENT_WITHOUT_VALUE,
                codes::ARGUMENT_WITHOUT_NAME
            ]
        );
        assert_eq!(args_codes(&["--a=1", "--a=2"]), [codes::ARGUMENT_DUPLICATE]);
    }

    #[test]
    fn load_file_reports_a_missing_file() {
        let mut set = PropertySet::new();
        let problems = set
            .load_file(&scratch("does-not-exist.properties"), Path::new(FILE))
            .expect_err("missing");
        assert_eq!(problems.len(), 1);
        let shown = problems[0].to_string();
        assert!(
            shown.starts_with("etc/application.properties: error: cannot read the file: "),
            "{shown}"
        );
        assert!(shown.contains("; fix: "), "{shown}");
    }

    #[test]
    fn bad_arguments_are_problems_and_change_nothing() {
        let mut set = PropertySet::new();
        let problems = set
            .add_args(&args(&[
                "--good=1",
                "s3cr3t-positional",
                "--flag",
                "--=x",
                "-p=1",
            ]))
            .expect_err("bad args");
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "argument 2: error: not a --name=value option; positional arguments are not accepted; fix: write each setting as --property.name=value",
                "command-line argument --flag: error: flag: the option has no value; fix: write --flag=value",
                "argument 4: error: no property name before '='; fix: write each setting as --property.name=value",
                "argument 5: error: not a --name=value option; positional arguments are not accepted; fix: write each setting as --property.name=value",
            ]
        );
        assert!(
            !shown.iter().any(|s| s.contains("s3cr3t")),
            "positional arguments are not echoed"
        );
        assert_eq!(set.get("good"), None);
    }

    #[test]
    fn argument_values_may_contain_equals_and_repeats_warn() {
        let mut set = PropertySet::new();
        set.add_args(&args(&["--k=a=b", "--x.y=1", "--x.Y=2"]))
            .expect("args");
        assert_eq!(raw(&set, "k"), Some("a=b"));
        assert_eq!(raw(&set, "x.y"), Some("2"));
        assert_eq!(
            set.warnings()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            vec![
                "command-line argument --x.Y: warning: x.Y: also given earlier as --x.y; the later argument wins; fix: give each property once"
            ]
        );
    }

    #[test]
    fn debug_output_redacts_secret_looking_values() {
        let mut set = loaded(
            "ataccama.authentication.internal.jwt.generator.key=c2VjcmV0LWtleS1tYXRlcmlhbA==\nport=1\n",
        );
        set.add_env(env(&[("DB_PASSWORD", "hunter2")]));
        let shown = format!("{set:?}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted, 28 chars>"), "{shown}");
        let port = format!("{:?}", set.get("port").expect("port"));
        assert!(port.contains("raw: \"1\""), "{port}");
    }

    #[test]
    fn never_panics_on_generated_input() {
        let mut noise = crate::noise::Noise::new(11);
        const NAMES: &[&str] = &[
            "", ".", "a", "a.b", "a[0]", "a[", "]", "a.b[1].c", "A_B", "a-b", "roles", "x[00]",
            "é", "[]", "..",
        ];
        const VARS: &[&str] = &[
            "",
            "_",
            "A",
            "A_B",
            "A_0_",
            "__",
            "A__B_1",
            "a.b",
            "É_X",
            "ROLES_99999999999999999999999",
        ];
        for round in 0..3_000 {
            let mut set = PropertySet::new();
            let text = noise.properties_text(80);
            let _ = set.load_str(&text, Path::new("fuzz.properties"));
            let vars: Vec<(String, String)> = (0..noise.below(4))
                .map(|_| {
                    (
                        VARS[noise.below(VARS.len())].to_owned(),
                        noise.properties_text(5),
                    )
                })
                .collect();
            set.add_env(vars);
            let arguments: Vec<String> = (0..noise.below(3))
                .map(|_| {
                    format!(
                        "--{}={}",
                        NAMES[noise.below(NAMES.len())],
                        noise.properties_text(3)
                    )
                })
                .collect();
            let _ = set.add_args(&arguments);
            for _ in 0..4 {
                let name = NAMES[noise.below(NAMES.len())];
                let _ = set.get(name);
                let _ = set.get_list(name);
                let _ = set.map_keys(name);
                let _ = set.entries_under(name);
            }
            for value in set.iter() {
                let _ = format!("{value:?} {}", value.origin);
            }
            for warning in set.warnings() {
                assert!(
                    !warning.to_string().contains('\n'),
                    "round {round}: {warning}"
                );
            }
        }
    }
}
