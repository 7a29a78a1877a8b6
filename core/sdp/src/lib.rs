//! switchyard-sdp
