//! ZKTeco terminals read directly over the ZK binary protocol.

pub mod codec;
