//! Errors and warnings of the `lvs.cf` parser.
//!
//! Every error renders as `FILE:LINE: what was expected, what was found`, so an operator can
//! go straight to the line. Values are quoted with Rust's `{:?}` so blanks, control characters
//! and empty strings stay visible. The only error without a line is [`LvsCfError::Io`].

use std::fmt;

/// Where something is in a configuration file: the name given to the parser and a 1-based
/// line number (CRLF, LF and lone CR each end one line).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The file name as given to the parser (a path, or a label such as `<fuzz>`).
    pub file: String,
    /// 1-based line number.
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// The kind of section a statement appears in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SectionKind {
    /// Outside any section.
    Global,
    /// `virtual NAME { ... }`.
    Virtual,
    /// `failover NAME { ... }`.
    Failover,
    /// `server NAME { ... }` inside a `virtual` section.
    Server,
}

impl SectionKind {
    /// The opening keyword (`virtual`, `failover`, `server`); `global` for the top level.
    pub const fn keyword(self) -> &'static str {
        match self {
            SectionKind::Global => "global",
            SectionKind::Virtual => "virtual",
            SectionKind::Failover => "failover",
            SectionKind::Server => "server",
        }
    }
}

/// A section as named in messages: `the global section`, `virtual section "http"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionRef {
    /// Kind of section.
    pub kind: SectionKind,
    /// Section name (empty for the global section).
    pub name: String,
}

impl fmt::Display for SectionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            SectionKind::Global => f.write_str("the global section"),
            k => write!(f, "{} section {:?}", k.keyword(), self.name),
        }
    }
}

/// Shows what was found after a keyword: `none` or the values, each quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found(pub Vec<String>);

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        write!(f, "{}:", self.0.len())?;
        for v in &self.0 {
            write!(f, " {v:?}")?;
        }
        Ok(())
    }
}

/// Everything that makes an `lvs.cf` file unacceptable.
#[derive(Debug, thiserror::Error)]
pub enum LvsCfError {
    /// The file could not be read.
    #[error("{file}: cannot read the configuration: {source}")]
    Io {
        /// The path.
        file: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file holds no statement at all (empty, or only blanks and comments).
    #[error("{at}: expected at least one keyword, found an empty configuration")]
    Empty {
        /// Line 1 of the file.
        at: Location,
    },
    /// The bytes are not UTF-8 text.
    #[error("{at}: expected UTF-8 text, found an invalid byte sequence")]
    NotUtf8 {
        /// The line holding the first invalid byte.
        at: Location,
    },
    /// A quoted token has no closing quote on its line.
    #[error(
        "{at}: expected a closing {quote} to end the quoted value, found the end of the line (quotation mismatch)"
    )]
    QuotationMismatch {
        /// The line.
        at: Location,
        /// The opening quote character.
        quote: char,
    },
    /// A keyword that does not exist, or does not belong in this section.
    #[error("{at}: expected a keyword of {section}, found unknown keyword {keyword:?}{hint}")]
    UnknownKeyword {
        /// The line.
        at: Location,
        /// The offending word.
        keyword: String,
        /// The section it appeared in.
        section: SectionRef,
        /// A hint such as ` (it belongs in a server section)`, or empty.
        hint: String,
    },
    /// `keyword value` without `=`.
    #[error("{at}: expected \"=\" after {keyword:?}, found {found}")]
    MissingEquals {
        /// The line.
        at: Location,
        /// The keyword.
        keyword: String,
        /// What came instead (`the end of the line` or a quoted token).
        found: String,
    },
    /// Too few or too many values after `keyword =`.
    #[error("{at}: expected {expected} for {keyword:?}, found {found}")]
    ValueCount {
        /// The line.
        at: Location,
        /// The keyword.
        keyword: String,
        /// `one value`, `2 values (IP DEVICE)`, ...
        expected: &'static str,
        /// The values found.
        found: Found,
    },
    /// `virtual`, `failover` or `server` not followed by exactly `NAME {`.
    #[error("{at}: expected \"{keyword} NAME {{\", found {found}")]
    BadSectionOpener {
        /// The line.
        at: Location,
        /// `virtual`, `failover` or `server`.
        keyword: &'static str,
        /// The tokens after the keyword.
        found: Found,
    },
    /// `}` with no open section.
    #[error("{at}: expected a keyword, found \"}}\" with no open section")]
    UnexpectedClose {
        /// The line.
        at: Location,
    },
    /// Something after `}` on the same line.
    #[error("{at}: expected nothing after \"}}\", found {found}")]
    TrailingAfterClose {
        /// The line.
        at: Location,
        /// The extra tokens.
        found: Found,
    },
    /// End of file inside a section.
    #[error(
        "{at}: expected \"}}\" to close {section} opened on this line, found the end of the file (line {eof_line})"
    )]
    UnterminatedSection {
        /// The line where the section opened.
        at: Location,
        /// The section.
        section: SectionRef,
        /// The last line of the file.
        eof_line: usize,
    },
    /// The same keyword twice in one section.
    #[error(
        "{at}: expected {keyword:?} at most once in {section}, found it again (first on line {first_line})"
    )]
    RepeatedKeyword {
        /// The second occurrence.
        at: Location,
        /// The keyword.
        keyword: String,
        /// The section.
        section: SectionRef,
        /// The first occurrence.
        first_line: usize,
    },
    /// `dirs =` not followed by `[ ... ]`.
    #[error("{at}: expected a list \"[ a b ... ]\" for {keyword:?}, found {found}")]
    ListExpected {
        /// The line.
        at: Location,
        /// The keyword.
        keyword: String,
        /// The values found.
        found: Found,
    },
    /// Not a C integer.
    #[error("{at}: expected an integer for {keyword:?}, found {found:?}")]
    NotAnInteger {
        /// The line.
        at: Location,
        /// The keyword.
        keyword: String,
        /// The value.
        found: String,
    },
    /// A number outside the keyword's range.
    #[error("{at}: expected {range} for {keyword:?}, found {found:?}")]
    OutOfRange {
        /// The line.
        at: Location,
        /// The keyword.
        keyword: String,
        /// The accepted range, in words.
        range: &'static str,
        /// The value as written.
        found: String,
    },
    /// A boolean other than 0 or 1.
    #[error("{at}: expected 0 or 1 for {keyword:?}, found {found:?}")]
    NotABoolean {
        /// The line.
        at: Location,
        /// The keyword.
        keyword: String,
        /// The value.
        found: String,
    },
    /// Not a time in seconds.
    #[error("{at}: expected {expected} for {keyword:?}, found {found:?}")]
    BadDuration {
        /// The line.
        at: Location,
        /// The keyword.
        keyword: String,
        /// What is accepted.
        expected: &'static str,
        /// The value.
        found: String,
    },
    /// Neither a dotted quad nor a resolvable IPv4 host name.
    #[error(
        "{at}: expected an IPv4 address or a resolvable host name for {keyword:?}, found {found:?}"
    )]
    BadHost {
        /// The line.
        at: Location,
        /// The keyword.
        keyword: String,
        /// The value.
        found: String,
    },
    /// Not a dotted-quad address (keywords that take no host names).
    #[error("{at}: expected a dotted-quad IPv4 address for {keyword:?}, found {found:?}")]
    BadAddress {
        /// The line.
        at: Location,
        /// The keyword.
        keyword: String,
        /// The value.
        found: String,
    },
    /// Not a contiguous dotted-quad netmask.
    #[error("{at}: expected a contiguous dotted-quad netmask for {keyword:?}, found {found:?}")]
    BadNetmask {
        /// The line.
        at: Location,
        /// The keyword.
        keyword: String,
        /// The value.
        found: String,
    },
    /// Not a port number or a known tcp service name.
    #[error("{at}: expected {expected} for {keyword:?}, found {found:?}")]
    BadPort {
        /// The line.
        at: Location,
        /// The keyword.
        keyword: String,
        /// `a port number 0..=65535` or `... or a tcp service name`.
        expected: &'static str,
        /// The value.
        found: String,
    },
    /// A word outside a fixed set (protocol, network, scheduler, ...).
    #[error("{at}: expected one of {expected} for {keyword:?}, found {found:?}")]
    BadChoice {
        /// The line.
        at: Location,
        /// The keyword.
        keyword: String,
        /// The accepted words.
        expected: String,
        /// The value.
        found: String,
    },
    /// A value of the right type that is not acceptable here (health-check extensions).
    #[error("{at}: expected {expected} for {keyword:?}, found {found:?}")]
    BadValue {
        /// The line.
        at: Location,
        /// The keyword.
        keyword: String,
        /// What is accepted.
        expected: String,
        /// The value.
        found: String,
    },
    /// A `sched_flags` entry that is not an ipvsadm flag name.
    #[error("{at}: expected scheduler flags from {expected} for \"sched_flags\", found {found:?}")]
    UnknownSchedFlag {
        /// The line.
        at: Location,
        /// The accepted flags.
        expected: String,
        /// The entry.
        found: String,
    },
    /// A scheduler flag the scheduler does not accept (ipvsadm's wording).
    #[error(
        "{at}: expected a flag that scheduler {scheduler:?} accepts, found {flag:?}: incompatible scheduler flag"
    )]
    IncompatibleSchedFlag {
        /// The `sched_flags` line.
        at: Location,
        /// The flag.
        flag: String,
        /// The scheduler.
        scheduler: String,
    },
    /// An active section without its `address`.
    #[error("{at}: expected {expected} in active {section}, found no address (or 0.0.0.0)")]
    MissingAddress {
        /// The line where the section opened.
        at: Location,
        /// The section.
        section: SectionRef,
        /// `"address = IP DEVICE"` or `"address = IP"`.
        expected: &'static str,
    },
    /// Port 0 on a service that is neither persistent nor fwmark-based.
    #[error(
        "{at}: expected a non-zero port for non-persistent {section} (port 0 needs persistent > 0 or fwmark), found 0"
    )]
    ZeroPort {
        /// The `port` line (or the section line when the port is the default).
        at: Location,
        /// The section.
        section: SectionRef,
    },
    /// Two active virtual sections for the same IPVS service.
    #[error(
        "{at}: expected each virtual service once, found {service} again in {section} (first in section {first_name:?} on line {first_line})"
    )]
    DuplicateVirtual {
        /// The second section's opening line.
        at: Location,
        /// The second section.
        section: SectionRef,
        /// `tcp 198.18.0.10:80` or `fwmark 7`.
        service: String,
        /// The first section's name.
        first_name: String,
        /// The first section's opening line.
        first_line: usize,
    },
    /// Two active real servers with one address:port in a virtual service.
    #[error(
        "{at}: expected each real server once in {section}, found {server} again in server {name:?} (first in server {first_name:?} on line {first_line}){note}"
    )]
    DuplicateServer {
        /// The second server's opening line.
        at: Location,
        /// The virtual section.
        section: SectionRef,
        /// `ADDR:PORT`.
        server: String,
        /// The second server's name.
        name: String,
        /// The first server's name.
        first_name: String,
        /// The first server's opening line.
        first_line: usize,
        /// Explains a collision caused by direct routing or tunnelling, or empty.
        note: &'static str,
    },
}

impl LvsCfError {
    /// The location of the error, when it has one (every variant but [`LvsCfError::Io`]).
    pub fn location(&self) -> Option<&Location> {
        use LvsCfError as E;
        match self {
            E::Io { .. } => None,
            E::Empty { at }
            | E::NotUtf8 { at }
            | E::QuotationMismatch { at, .. }
            | E::UnknownKeyword { at, .. }
            | E::MissingEquals { at, .. }
            | E::ValueCount { at, .. }
            | E::BadSectionOpener { at, .. }
            | E::UnexpectedClose { at }
            | E::TrailingAfterClose { at, .. }
            | E::UnterminatedSection { at, .. }
            | E::RepeatedKeyword { at, .. }
            | E::ListExpected { at, .. }
            | E::NotAnInteger { at, .. }
            | E::OutOfRange { at, .. }
            | E::NotABoolean { at, .. }
            | E::BadDuration { at, .. }
            | E::BadHost { at, .. }
            | E::BadAddress { at, .. }
            | E::BadNetmask { at, .. }
            | E::BadPort { at, .. }
            | E::BadChoice { at, .. }
            | E::BadValue { at, .. }
            | E::UnknownSchedFlag { at, .. }
            | E::IncompatibleSchedFlag { at, .. }
            | E::MissingAddress { at, .. }
            | E::ZeroPort { at, .. }
            | E::DuplicateVirtual { at, .. }
            | E::DuplicateServer { at, .. } => Some(at),
        }
    }
}

/// Something accepted but worth an operator's attention. Renders as `FILE:LINE: text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvsCfWarning {
    /// Where.
    pub at: Location,
    /// What.
    pub message: String,
}

impl fmt::Display for LvsCfWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}
