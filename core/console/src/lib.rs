//! switchyard-console
