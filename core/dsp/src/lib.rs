//! switchyard-dsp (being written).
