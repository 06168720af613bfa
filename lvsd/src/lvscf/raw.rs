//! Stage 1: lexed lines → the raw file structure.
//!
//! Checks everything about the *shape* of the file: section openers and `}`, known keyword
//! names per section, the `=`, the number of values, `[ ... ]` lists, and that no keyword
//! repeats within one section (a deliberate difference: Piranha let the last one win). Values
//! stay uninterpreted tokens; `validate.rs` types them.
//!
//! Items keep file order, including the interleaving of `server` sections with the virtual
//! section's own statements: a server's default port is the virtual `port` *as read so far*.

use std::collections::BTreeMap;

use super::error::{Found, Location, LvsCfError, SectionKind, SectionRef};
use super::keywords::{self, Shape};
use super::lexer::{Lexed, Line, Token};

/// `keyword = values` with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawStmt {
    /// 1-based line.
    pub line: usize,
    /// The keyword (a name from `keywords.rs`).
    pub keyword: String,
    /// The values after `=`; for a list, the items between `[` and `]`.
    pub values: Vec<Token>,
}

/// One item of a section body, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawItem {
    /// A statement.
    Stmt(RawStmt),
    /// A nested `server NAME { ... }`.
    Section(RawSection),
}

/// A `virtual`, `failover` or `server` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSection {
    /// Kind.
    pub kind: SectionKind,
    /// Name (one token, quotes stripped).
    pub name: String,
    /// Line of `KIND NAME {`.
    pub line: usize,
    /// Body, in order.
    pub items: Vec<RawItem>,
}

impl RawSection {
    /// The section as named in messages.
    pub fn as_ref(&self) -> SectionRef {
        SectionRef {
            kind: self.kind,
            name: self.name.clone(),
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawFile {
    /// Global statements, in order.
    pub globals: Vec<RawStmt>,
    /// `virtual` and `failover` sections, in order.
    pub sections: Vec<RawSection>,
}

struct Open {
    section: RawSection,
    seen: BTreeMap<String, usize>,
}

/// Builds the raw structure.
pub fn parse(file: &str, lexed: &Lexed) -> Result<RawFile, LvsCfError> {
    let at = |line: usize| Location {
        file: file.to_owned(),
        line,
    };
    if lexed.lines.is_empty() {
        return Err(LvsCfError::Empty { at: at(1) });
    }
    let mut out = RawFile::default();
    let mut global_seen: BTreeMap<String, usize> = BTreeMap::new();
    // stack[0] = virtual/failover, stack[1] = server
    let mut stack: Vec<Open> = Vec::new();

    for line in &lexed.lines {
        let Some((first, rest)) = line.tokens.split_first() else {
            continue;
        };
        let kind = stack.last().map_or(SectionKind::Global, |o| o.section.kind);
        if first.quote.is_none() && first.text == "}" {
            if !rest.is_empty() {
                return Err(LvsCfError::TrailingAfterClose {
                    at: at(line.number),
                    found: found(rest),
                });
            }
            let closed = stack.pop().ok_or(LvsCfError::UnexpectedClose {
                at: at(line.number),
            })?;
            match stack.last_mut() {
                Some(parent) => parent.section.items.push(RawItem::Section(closed.section)),
                None => out.sections.push(closed.section),
            }
            continue;
        }
        let keyword = first.text.as_str();
        let opener = match (kind, keyword) {
            (SectionKind::Global, "virtual") => Some(SectionKind::Virtual),
            (SectionKind::Global, "failover") => Some(SectionKind::Failover),
            (SectionKind::Virtual | SectionKind::Failover, "server") => Some(SectionKind::Server),
            _ => None,
        };
        if let (Some(new_kind), None) = (opener, first.quote) {
            stack.push(open_section(file, line, new_kind, rest)?);
            continue;
        }
        let section_ref = stack.last().map_or(
            SectionRef {
                kind: SectionKind::Global,
                name: String::new(),
            },
            |o| o.section.as_ref(),
        );
        let stmt = statement(file, line, kind, &section_ref)?;
        let seen = match stack.last_mut() {
            Some(o) => &mut o.seen,
            None => &mut global_seen,
        };
        if let Some(&first_line) = seen.get(&stmt.keyword) {
            return Err(LvsCfError::RepeatedKeyword {
                at: at(line.number),
                keyword: stmt.keyword,
                section: section_ref,
                first_line,
            });
        }
        seen.insert(stmt.keyword.clone(), line.number);
        match stack.last_mut() {
            Some(o) => o.section.items.push(RawItem::Stmt(stmt)),
            None => out.globals.push(stmt),
        }
    }
    if let Some(open) = stack.pop() {
        // Report the innermost open section: that is where the `}` is missing.
        return Err(LvsCfError::UnterminatedSection {
            at: at(open.section.line),
            section: open.section.as_ref(),
            eof_line: lexed.last_line,
        });
    }
    Ok(out)
}

fn found(tokens: &[Token]) -> Found {
    Found(tokens.iter().map(|t| t.text.clone()).collect())
}

fn open_section(
    file: &str,
    line: &Line,
    kind: SectionKind,
    rest: &[Token],
) -> Result<Open, LvsCfError> {
    match rest {
        [name, brace] if brace.quote.is_none() && brace.text == "{" => Ok(Open {
            section: RawSection {
                kind,
                name: name.value().to_owned(),
                line: line.number,
                items: Vec::new(),
            },
            seen: BTreeMap::new(),
        }),
        _ => Err(LvsCfError::BadSectionOpener {
            at: Location {
                file: file.to_owned(),
                line: line.number,
            },
            keyword: kind.keyword(),
            found: found(rest),
        }),
    }
}

fn statement(
    file: &str,
    line: &Line,
    kind: SectionKind,
    section: &SectionRef,
) -> Result<RawStmt, LvsCfError> {
    let at = Location {
        file: file.to_owned(),
        line: line.number,
    };
    let (first, rest) = line
        .tokens
        .split_first()
        .expect("the lexer never yields a line without tokens");
    let keyword = first.text.clone();
    let shape = match (first.quote, keywords::shape(kind, &keyword)) {
        (None, Some(shape)) => shape,
        _ => {
            return Err(LvsCfError::UnknownKeyword {
                at,
                hint: keywords::hint(kind, &keyword),
                keyword,
                section: section.clone(),
            });
        }
    };
    let values = match rest.split_first() {
        Some((eq, values)) if eq.is_equals() => values,
        other => {
            return Err(LvsCfError::MissingEquals {
                at,
                keyword,
                found: other.map_or_else(
                    || "the end of the line".to_owned(),
                    |(t, _)| format!("{:?}", t.text),
                ),
            });
        }
    };
    let (expected, ok) = match shape {
        Shape::One => ("one value", values.len() == 1),
        Shape::Pair => ("2 values (IP DEVICE)", values.len() == 2),
        Shape::List => {
            let is =
                |t: Option<&Token>, s: &str| t.is_some_and(|t| t.quote.is_none() && t.text == s);
            if values.len() >= 2 && is(values.first(), "[") && is(values.last(), "]") {
                let items = values[1..values.len() - 1].to_vec();
                return Ok(RawStmt {
                    line: line.number,
                    keyword,
                    values: items,
                });
            }
            return Err(LvsCfError::ListExpected {
                at,
                keyword,
                found: found(values),
            });
        }
    };
    if !ok {
        return Err(LvsCfError::ValueCount {
            at,
            keyword,
            expected,
            found: found(values),
        });
    }
    Ok(RawStmt {
        line: line.number,
        keyword,
        values: values.to_vec(),
    })
}
