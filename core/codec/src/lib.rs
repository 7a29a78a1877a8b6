//! switchyard-codec (being written).
