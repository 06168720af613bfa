//! `--name value` / `--flag` arguments, enough for the lab tools.

use std::str::FromStr;

/// What went wrong with the command line.
#[derive(Debug, thiserror::Error)]
pub enum ArgError {
    /// An option that takes a value came last.
    #[error("{0} needs a value")]
    MissingValue(String),
    /// A value did not parse.
    #[error("{name}: bad value {value:?}")]
    BadValue { name: String, value: String },
    /// A required option was not given.
    #[error("{0} is required")]
    Required(String),
    /// Something the tool does not know.
    #[error("unknown argument {0:?}")]
    Unknown(String),
}

/// Arguments being consumed; [`Args::finish`] rejects what is left.
#[derive(Debug)]
pub struct Args {
    items: Vec<Option<String>>,
}

impl Args {
    /// The process's arguments, without the program name.
    pub fn from_env() -> Self {
        Self::new(std::env::args().skip(1))
    }

    /// Arguments from any list (tests).
    pub fn new(items: impl IntoIterator<Item = String>) -> Self {
        Self {
            items: items.into_iter().map(Some).collect(),
        }
    }

    /// Takes the first argument if it does not start with `-` (a subcommand).
    pub fn subcommand(&mut self) -> Option<String> {
        match self.items.first() {
            Some(Some(s)) if !s.starts_with('-') => self.items.remove(0),
            _ => None,
        }
    }

    /// Whether `--name` is present (consumed).
    pub fn flag(&mut self, name: &str) -> bool {
        let mut seen = false;
        for item in &mut self.items {
            if item.as_deref() == Some(name) {
                *item = None;
                seen = true;
            }
        }
        seen
    }

    /// Every value of `--name value` (repeatable).
    pub fn values<T: FromStr>(&mut self, name: &str) -> Result<Vec<T>, ArgError> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.items.len() {
            if self.items[i].as_deref() == Some(name) {
                self.items[i] = None;
                let value = self
                    .items
                    .get_mut(i + 1)
                    .and_then(Option::take)
                    .ok_or_else(|| ArgError::MissingValue(name.to_owned()))?;
                let parsed = value.parse().map_err(|_| ArgError::BadValue {
                    name: name.to_owned(),
                    value,
                })?;
                out.push(parsed);
                i += 2;
            } else {
                i += 1;
            }
        }
        Ok(out)
    }

    /// The last value of `--name value`, if given.
    pub fn opt<T: FromStr>(&mut self, name: &str) -> Result<Option<T>, ArgError> {
        Ok(self.values(name)?.pop())
    }

    /// The value of `--name value`, or `default`.
    pub fn or<T: FromStr>(&mut self, name: &str, default: T) -> Result<T, ArgError> {
        Ok(self.opt(name)?.unwrap_or(default))
    }

    /// The value of `--name value`, which must be given.
    pub fn required<T: FromStr>(&mut self, name: &str) -> Result<T, ArgError> {
        self.opt(name)?
            .ok_or_else(|| ArgError::Required(name.to_owned()))
    }

    /// Fails on the first argument nobody consumed.
    pub fn finish(self) -> Result<(), ArgError> {
        match self.items.into_iter().flatten().next() {
            Some(s) => Err(ArgError::Unknown(s)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Args {
        Args::new(s.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn parses_flags_values_and_repeats() {
        let mut a = args("serve --listen 1.2.3.4:80 -k --listen 0.0.0.0:81 --count 3");
        assert_eq!(a.subcommand().as_deref(), Some("serve"));
        assert!(a.flag("-k"));
        let l: Vec<String> = a.values("--listen").unwrap();
        assert_eq!(l, ["1.2.3.4:80", "0.0.0.0:81"]);
        assert_eq!(a.or("--count", 1u32).unwrap(), 3);
        assert_eq!(a.or("--other", 7u32).unwrap(), 7);
        a.finish().unwrap();
    }

    #[test]
    fn reports_errors() {
        assert!(args("--count x").opt::<u32>("--count").is_err());
        assert!(args("--count").opt::<u32>("--count").is_err());
        assert!(args("").required::<u32>("--count").is_err());
        assert!(args("--what").finish().is_err());
    }
}
