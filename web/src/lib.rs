//! Console presentation layer (filled by the console issue).
