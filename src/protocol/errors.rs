//! Kafka error codes as they travel on the wire (`i16`). Their names,
//! messages and classes live in kp's one error table, `crate::error::TABLE`
//! (a leaf module below every layer); only the codes that protocol messages
//! themselves produce or inspect are named here.

use crate::error;

/// The broker does not support the requested API version (ApiVersions
/// answers with it and then lists what it does support).
pub const UNSUPPORTED_VERSION: i16 = error::UNSUPPORTED_VERSION as i16;

#[cfg(test)]
mod tests {
    #[test]
    fn wire_codes_are_the_table_codes() {
        assert_eq!(crate::error::name(super::UNSUPPORTED_VERSION.into()), "UNSUPPORTED_VERSION");
    }
}
