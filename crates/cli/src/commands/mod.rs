//! One module per `roster` command.

pub mod admin_key;
pub mod directory;
pub mod events;
pub mod secret_key;
pub mod serve;
pub mod sync;
pub mod token;
pub mod webhook;
