//! switchyard-rtp (being written).
