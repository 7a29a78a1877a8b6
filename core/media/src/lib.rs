//! switchyard-media
