//! switchyard-recording (being written).
