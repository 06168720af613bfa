//! Connection table. (filled in by the connection-table work)
