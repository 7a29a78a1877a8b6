//! switchyard-store
