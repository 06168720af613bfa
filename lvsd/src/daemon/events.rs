//! The recent events of this lvsd, for the status page and `GET /v1/events`: role changes
//! with pulse's reason, real servers going down and up with the probe's reason, the sorry
//! server standing in, reloads and run-time changes. The journal has every line; this keeps
//! the last [`KEEP`] so that the page can show what happened without a log reader.
//!
//! Times are wall-clock (the page shows them to a person); the caller passes them in.

use std::collections::VecDeque;

use crate::control::api::{EventView, EventsView};
pub use crate::control::page::now_unix_ms;

/// Events kept.
pub const KEEP: usize = 50;

/// See the module docs.
#[derive(Debug, Default)]
pub struct Recent {
    events: VecDeque<EventView>,
    last_takeover: Option<EventView>,
}

impl Recent {
    /// Records one event at `at_unix_ms`, dropping the oldest beyond [`KEEP`].
    pub fn push(&mut self, at_unix_ms: u64, kind: &str, text: String) {
        let ev = EventView {
            at_unix_ms,
            kind: kind.to_owned(),
            text,
        };
        if self.events.len() == KEEP {
            self.events.pop_back();
        }
        self.events.push_front(ev);
    }

    /// Records that this director became active, and why.
    pub fn takeover(&mut self, at_unix_ms: u64, text: String) {
        self.push(at_unix_ms, "role", text);
        self.last_takeover = self.events.front().cloned();
    }

    /// Newest first.
    pub fn view(&self) -> EventsView {
        EventsView {
            events: self.events.iter().cloned().collect(),
            last_takeover: self.last_takeover.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_first_and_remembers_the_takeover() {
        let mut r = Recent::default();
        r.takeover(1, "active: partner dead after 0.15 s".into());
        for i in 0..KEEP as u64 + 5 {
            r.push(10 + i, "server", format!("event {i}"));
        }
        let v = r.view();
        assert_eq!(v.events.len(), KEEP);
        assert_eq!(v.events[0].text, format!("event {}", KEEP + 4));
        assert_eq!(
            v.last_takeover.map(|e| e.text),
            Some("active: partner dead after 0.15 s".to_owned()),
            "the takeover outlives the ring"
        );
    }
}
