//! Virtual services and destinations. (filled in by the scheduling work)
