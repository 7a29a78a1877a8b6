//! The dialplan executor on the switch's virtual clock (see switch_tests for the harness):
//! bridges that fail over, digit collection, transfers, reload.

use std::time::Duration;

use crate::switch_tests::*;
