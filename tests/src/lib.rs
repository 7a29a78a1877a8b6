//! switchyard-e2e: helpers for end-to-end tests
