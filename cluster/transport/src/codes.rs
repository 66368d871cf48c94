//! QUIC connection close codes and stream reset codes: what each side tells the other when it ends a
//! connection or refuses a request. Kept apart so the modules that use them (`transport`, `link`, `dial`,
//! `client`) depend on this one and never on each other for it.

use quinn::VarInt;

/// Connection close code: the endpoint is shutting down.
pub const CLOSE_SHUTDOWN: VarInt = VarInt::from_u32(0);
/// Connection close code: the hello was refused.
pub const CLOSE_REFUSED: VarInt = VarInt::from_u32(1);
/// Connection close code: a newer connection from the same peer replaced this one.
pub const CLOSE_REPLACED: VarInt = VarInt::from_u32(2);
/// Connection close code: the remote side broke the protocol (bad hello, oversized frame...).
pub const CLOSE_PROTOCOL: VarInt = VarInt::from_u32(3);
/// Connection close code: the peer was removed.
pub const CLOSE_LINK_REMOVED: VarInt = VarInt::from_u32(4);

/// Stream reset code: the request queue was full; the request was not processed.
pub const RESET_OVERLOADED: VarInt = VarInt::from_u32(1);
/// Stream reset code: the request exceeded the frame limit; it was not processed.
pub const RESET_TOO_LARGE: VarInt = VarInt::from_u32(2);
/// Stream reset code: the application no longer takes requests; the request was not processed.
pub const RESET_NOT_ACCEPTING: VarInt = VarInt::from_u32(3);
/// Stream reset code: the request frame was malformed or incomplete; it was not processed.
pub const RESET_MALFORMED: VarInt = VarInt::from_u32(4);
/// Stream reset code: the application dropped the request without answering; it may have been processed.
pub const RESET_NO_RESPONSE: VarInt = VarInt::from_u32(5);
