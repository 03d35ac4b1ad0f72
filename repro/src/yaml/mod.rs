//! YAML as DVC sees it: a spanned loader, YAML 1.2 scalar resolution like ruamel's, and an
//! emitter that writes block YAML byte for byte like the ruamel.yaml dumper DVC 3 uses.

mod emit;
mod node;
pub(crate) mod resolve;
mod value;

pub use emit::dump;
pub use node::{Node, NodeKind, load};
pub use value::Value;
