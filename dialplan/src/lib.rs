//! switchyard-dialplan
