//! Sans-IO SIP (RFC 3261): a zero-copy message parser with lazily typed headers, a serializer,
//! the four transaction state machines, and digest authentication (RFC 2617 / RFC 8760).
//!
//! Nothing here owns a socket or reads the clock: the signalling reactor feeds bytes and `now`
//! in and polls transmits, events and the next timeout out.

pub mod auth;
pub mod builder;
mod error;
pub mod header;
pub mod message;
pub mod refer;
pub mod transaction;
pub mod uri;

pub use builder::{MessageBuilder, response_to};
pub use error::{Error, ParseError, ParseErrorKind};
pub use header::{Contact, NameAddr, Via};
pub use message::{Message, Method};
pub use uri::Uri;
