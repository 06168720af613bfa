//! Schedulers. (filled in by the scheduling work)
